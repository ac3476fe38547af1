"""The control room: `pravah ui`, a web console on the project folder that a data scientist keeps open all day.

It reads what the CLI writes (run records, the registry, endpoint states, monitoring windows) and changes
things only through the CLI's own code paths (the registry's approval rules, an endpoint's rollback request).
Every page is rendered here from templates and one style sheet and one script of its own (no CDN, no build)."""
