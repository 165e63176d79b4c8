"""The service's schema as Alembic migrations: ``service.db`` upgrades every database to the head
on start (a database made before migrations existed is recognised and stamped first)."""
