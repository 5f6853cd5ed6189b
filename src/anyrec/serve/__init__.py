"""The live side: HTTP API (FastAPI), live scoring from the store's event log, model versions."""

from anyrec.serve.app import create_app
from anyrec.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
