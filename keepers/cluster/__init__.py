"""The distributed form: cycles as TaskIQ tasks on Redis, the worker that runs them
under per-user leases, and the throwaway PostgreSQL/Redis servers of make cluster and
the tests. May import engine and everything below it."""
