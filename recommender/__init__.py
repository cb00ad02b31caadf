"""paperbot's recommender: papers, vectors, people and their feedback. No chat library here."""

from .paper import Paper, Result, parse_arxiv_id
from .service import IngestCounts, PaperNotFound, Recommender
from .store import StoreUnavailable

__all__ = ["IngestCounts", "Paper", "PaperNotFound", "Recommender", "Result",
           "StoreUnavailable", "parse_arxiv_id"]
