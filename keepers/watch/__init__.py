"""Observers of a running keeper: the watchers the scheduler calls, Prometheus
metrics, webhooks on a background queue, and the status API and page. May import the
views and everything below them; nothing below imports watch."""
