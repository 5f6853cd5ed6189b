"""The API by resource, one router each: recommendations, events and users, the catalog, model versions,
experiments, operations. Each module's ``router(settings, roles)`` builds its routes (annotations are evaluated at
definition: no ``from __future__ import annotations`` here, FastAPI reads them)."""
