"""One paper across sources: an arXiv preprint and its journal version, a bioRxiv preprint and
the article a journal's feed announces later, are one paper, not two.

Every stored paper leaves its aliases in one hash: each DOI it carries (its own, a journal DOI
arXiv or bioRxiv gives, `extras.doi` / `extras.published_doi`) and its normalised title's hash.
A paper new to the store whose alias already names another stored paper is folded into it (not
stored again), when the DOI matches, or when the title matches and one of the two comes from
a source beyond arXiv and files (a `doi:`, `openreview:` or `u:` id): two arXiv ids or file
rows with one title stay two papers, as they always were. The first paper stored keeps its id.
`resolve` reads the aliases too, so `similar <journal DOI>` finds the preprint.

Keys (P = the prefix):

| key       | type | holds                                                                 |
|-----------|------|-----------------------------------------------------------------------|
| P aliases | hash | `doi:<doi>` or `title:<hash>` → the id of the paper first stored with it |
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Container, Iterable

from .paper import Paper, doi_id, normalise_title, paper_key, parse_doi
from .store import PaperStore

log = logging.getLogger(__name__)

NEW_KINDS = ("doi:", "openreview:", "u:")
MIN_TITLE_WORDS = 4      # "Editorial", "Correction", "News in brief" name no one paper


def aliases(paper: Paper) -> list[str]:
    """The alias fields of `paper`: its DOIs, then its title's hash (long titles only)."""
    dois = [paper.id.removeprefix("doi:")] if paper.id.startswith("doi:") else []
    for key in ("doi", "published_doi"):
        doi = parse_doi(str(paper.extras.get(key) or ""))
        if doi and doi_id(doi).startswith("doi:"):   # arXiv's own DOI is its id already
            dois.append(doi)
    out = [f"doi:{doi}" for doi in dict.fromkeys(dois)]
    title = normalise_title(paper.title)
    if len(title.split()) >= MIN_TITLE_WORDS:
        out.append("title:" + hashlib.sha1(title.encode()).hexdigest()[:16])
    return out


def unique(store: PaperStore, papers: Iterable[Paper]) -> list[Paper]:
    """The papers of one ingest batch, each once: repeats within the batch dropped (the last
    kept), and papers another source already stored folded into it; records the aliases of
    the papers kept."""
    batch = list({p.id: p for p in papers}.values())
    if not batch:
        return []
    fields = {p.id: aliases(p) for p in batch}
    wanted = list(dict.fromkeys(f for fs in fields.values() for f in fs))
    known = dict(zip(wanted, _decode(store.r.hmget(store.key("aliases"), wanted)) if wanted else []))
    stored = _stored(store, {p.id for p in batch} | {v for v in known.values() if v})
    kept, updates = [], {}
    for paper in batch:
        other = None if paper.id in stored else _other(paper, fields[paper.id], known, stored)
        if other is not None:
            log.info("paper %s is %s, stored from another source: folded", paper.id, other)
            continue
        kept.append(paper)
        stored.add(paper.id)   # later papers of the batch can fold into it
        for field in fields[paper.id]:
            if known.get(field) not in stored:
                known[field] = updates[field] = paper.id
    if updates:
        store.r.hset(store.key("aliases"), mapping=updates)
    return kept


def resolve(store: PaperStore, text: str, index: Container[str]) -> str:
    """A stored paper's id from what a person typed: an id as it is, an arXiv id or link, a
    DOI or DOI link (bioRxiv, a journal), an OpenReview link; a DOI another source brought is
    its paper's id. Anything else is returned as typed (then it names no paper)."""
    text = (text or "").strip()
    if text in index:
        return text
    key = paper_key(text)
    if key is None or key in index:
        return key or text
    if key.startswith("doi:"):
        found = store.r.hget(store.key("aliases"), key)
        if found:
            return found.decode() if isinstance(found, bytes) else found
    return key


def _other(paper: Paper, fields: list[str], known: dict[str, str | None],
           stored: set[str]) -> str | None:
    """The stored paper `paper` is another copy of, else None."""
    for field in fields:
        other = known.get(field)
        if not other or other == paper.id or other not in stored:
            continue
        if field.startswith("doi:") or other.startswith(NEW_KINDS) or paper.id.startswith(NEW_KINDS):
            return other
    return None


def _stored(store: PaperStore, ids: set[str]) -> set[str]:
    ids_list = sorted(ids)
    pipe = store.r.pipeline(transaction=False)
    for paper_id in ids_list:
        pipe.zscore(store.key("papers"), paper_id)
    return {pid for pid, score in zip(ids_list, pipe.execute()) if score is not None}


def _decode(values: list[bytes | None]) -> list[str | None]:
    return [v.decode() if isinstance(v, bytes) else v for v in values]
