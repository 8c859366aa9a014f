"""The queue page where agents work: the scored queue, each ticket's score history and their feedback.

``create_app`` builds the FastAPI app over a :class:`~pipeline.sinks.writeback.QueueStore`;
``serve`` opens the database and runs it with uvicorn (``csat-triage serve``).
"""

from pipeline.sinks.web.app import create_app
from pipeline.sinks.web.server import TOKEN_ENV, serve

__all__ = ["TOKEN_ENV", "create_app", "serve"]
