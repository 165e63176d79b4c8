"""The API's routers, one per resource, gathered in :data:`ROUTERS`."""

from service.routers import cases, health, policies, runs, stacks, tenants

ROUTERS = [health.router, cases.router, stacks.router, runs.router, policies.router, tenants.router]

__all__ = ["ROUTERS"]
