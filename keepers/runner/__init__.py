"""The lifecycles of keeper processes, wired once: a keeper (`ape run keeper`), a
worker and a dispatcher of the distributed form, and the parts the replay drives
(context -> watchers -> scheduler). Scripts only call these. May import watch,
cluster, engine and everything below them; the replay is the one floor above."""
