"""Saved CloudWatch Logs Insights queries, one ``*.logsinsights`` file per query.

Each file starts with ``#`` comment lines: ``# purpose: ...``, ``# log-groups: reporter, ...``
(symbolic roles, resolved to real log groups by whoever deploys or runs the query), then free
notes; the rest is the query. Keeping queries as files lets them be read, diffed and pasted into
the console as they are, while the Pulumi layer and dashboards load the same text.

Example::

    >>> from queries import load_query
    >>> load_query("lock-contention").log_groups
    ('reporter',)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["LOG_GROUP_ROLES", "SavedQuery", "load_queries", "load_query"]

LOG_GROUP_ROLES = ("collector", "reporter", "verifier")
SUFFIX = ".logsinsights"


@dataclass(frozen=True)
class SavedQuery:
    name: str
    purpose: str
    log_groups: tuple[str, ...]
    notes: str
    text: str


def _parse(name: str, source: str) -> SavedQuery:
    header: dict[str, str] = {}
    notes: list[str] = []
    lines = source.strip().splitlines()
    while lines and lines[0].startswith("#"):
        comment = lines.pop(0).lstrip("#").strip()
        key, sep, value = comment.partition(":")
        if sep and key in ("purpose", "log-groups"):
            header[key] = value.strip()
        else:
            notes.append(comment)
    where = f"queries/{name}{SUFFIX}"
    missing = [key for key in ("purpose", "log-groups") if not header.get(key)]
    if missing:
        raise ValueError(f"{where}: add the header comment line(s) {', '.join(f'# {k}: ...' for k in missing)}")
    roles = tuple(role.strip() for role in header["log-groups"].split(","))
    unknown = [role for role in roles if role not in LOG_GROUP_ROLES]
    if unknown:
        raise ValueError(f"{where}: unknown log-groups {unknown}; use roles from {LOG_GROUP_ROLES}")
    text = "\n".join(lines).strip()
    if not text:
        raise ValueError(f"{where}: the file has a header but no query")
    return SavedQuery(name, header["purpose"], roles, " ".join(notes), text)


@cache
def load_queries() -> tuple[SavedQuery, ...]:
    """Every saved query, sorted by name."""
    files = sorted((f for f in resources.files(__name__).iterdir() if f.name.endswith(SUFFIX)), key=lambda f: f.name)
    return tuple(_parse(f.name.removesuffix(SUFFIX), f.read_text(encoding="utf-8")) for f in files)


def load_query(name: str) -> SavedQuery:
    """One saved query by file name (without the suffix)."""
    for query in load_queries():
        if query.name == name:
            return query
    raise KeyError(f"no saved query {name!r}; known: {[q.name for q in load_queries()]}")
