"""The dashboard's pages, one module per area: workflows, queues, auth, live events."""
