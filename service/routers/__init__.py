"""The API's routers, one per resource, gathered in :data:`ROUTERS`."""

from service.routers import cases, health, runs, stacks, tenants

ROUTERS = [health.router, cases.router, stacks.router, runs.router, tenants.router]

__all__ = ["ROUTERS"]
