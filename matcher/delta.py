"""Writes applied to a network index as deltas.

A write names the organisations it changed; the index of the next version keeps every
other organisation's rows (n-gram counts, tf-idf rows, word stems, vectors) and replaces
the changed organisations' rows by their fresh ones, in place in the tables sorted by
organisation position. New rows are weighted with the statistics of the last fit (the
lexical idf, the word-stem weights); when the changes since that fit pass a share of the
network (`refit_share`), the statistics are fitted again, in memory, on every row, which
gives exactly the index a fresh build would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from matcher.encoders import LexicalEncoder, WordEncoder, word_stems
from matcher.index import (
    KINDS,
    IntArray,
    NetworkIndex,
    OrganisationRecord,
    StatementRecord,
    StatementTable,
    take_rows,
)
from matcher.spelling import word_counts

# Refit the statistics once the statements and organisations changed since the last fit
# pass this share of the network (a few writes on a small network, about a hundred single
# organisation writes at 100,000 statements).
REFIT_SHARE = 0.01


@dataclass(frozen=True)
class Changes:
    """The organisations some writes touched, as they now are.

    `organisation_ids` names every organisation touched (created, edited, deleted);
    `organisations` holds the current records of those that still exist and `statements`
    all their current statements (the others' are ignored). A touched organisation absent
    from `organisations` was deleted.
    """

    organisation_ids: frozenset[int]
    organisations: Sequence[OrganisationRecord]
    statements: Sequence[StatementRecord]


@dataclass(frozen=True)
class Delta:
    """The index after some changes, and how its rows relate to the previous index's.

    `org_sources[p]` is the previous position of the organisation now at position `p`, or
    `previous size + i` for the i-th fresh record (organisations sorted by id);
    `sources[kind][r]` likewise the previous row of the row `r` of a table, or `previous
    rows + i` for the i-th row of `added[kind]` (statement ids). `refitted`: the
    statistics were fitted again, so what depends on them (calibration) is stale.
    """

    index: NetworkIndex
    refitted: bool
    touched: IntArray  # ids of the organisations the changes named, sorted
    old_to_new: IntArray  # new position of each previous organisation, -1 if touched
    changed_positions: IntArray  # new positions of the touched organisations still present
    org_sources: IntArray
    sources: dict[str, IntArray]
    added: dict[str, IntArray]


def _past_share(drift: int, size: int, share: float) -> bool:
    return drift > share * max(size, 1)


def refit_due(index: NetworkIndex, refit_share: float = REFIT_SHARE) -> bool:
    """Whether the changes since the index's last fit pass `refit_share` of it (what
    `apply_changes` decides when not told)."""
    return _past_share(index.changed_since_fit, index.rows + index.size, refit_share)


def _key(s: StatementRecord) -> str:
    return s.content_hash or f"id:{s.id}"


def _row_key(content_hash: str, statement_id: object) -> str:
    """The key of a table row in `statement_stems` (as `_key` of its record)."""
    return content_hash or f"id:{statement_id}"


def apply_changes(
    index: NetworkIndex,
    changes: Changes,
    *,
    expand: Callable[[str], str] | None = None,
    refit_share: float = REFIT_SHARE,
    refit: bool | None = None,
) -> Delta:
    """The index with the touched organisations' rows replaced by their current ones.

    Parameters
    ----------
    index : the index of the previous version (left unchanged; unchanged rows are shared).
    changes : the touched organisations, their current records and statements.
    expand : text -> text applied before lexical encoding and word stems, as in
        `NetworkIndex.build` (the same function must be given).
    refit_share : refit the statistics when the statements and organisations changed since
        the last fit exceed this share of the network.
    refit : force (True) or forbid (False) the refit, whatever the drift.

    Returns
    -------
    Delta
        With a refit, `delta.index` equals `NetworkIndex.build` of the same records.
    """
    expand = expand or (lambda t: t)
    old_n = index.size
    if len(index.profile_tokens) != old_n:
        raise ValueError("apply_changes needs an index made by NetworkIndex.build.")
    touched = np.array(sorted(changes.organisation_ids), dtype=np.int64)
    touched_pos = index.org_positions(touched)
    keep_org = np.ones(old_n, dtype=bool)
    keep_org[touched_pos[touched_pos >= 0]] = False
    fresh = sorted(
        (o for o in changes.organisations if o.id in changes.organisation_ids), key=lambda o: o.id
    )
    fresh_ids = np.array([o.id for o in fresh], dtype=np.int64)
    if len(np.unique(fresh_ids)) != len(fresh_ids):
        raise ValueError("an organisation appears twice in the changes")

    # Organisations: the kept ones and the fresh records, sorted by id.
    kept_positions = np.flatnonzero(keep_org)
    org_ids = np.concatenate([index.org_ids[kept_positions], fresh_ids])
    order = np.argsort(org_ids, kind="stable")
    org_sources = np.concatenate([kept_positions, old_n + np.arange(len(fresh), dtype=np.int64)])[
        order
    ]
    organisations = [
        index.organisations[s] if s < old_n else fresh[s - old_n] for s in org_sources.tolist()
    ]
    new_pos = np.empty(len(org_ids), dtype=np.int64)
    new_pos[order] = np.arange(len(org_ids), dtype=np.int64)
    old_to_new = np.full(old_n, -1, dtype=np.int64)
    old_to_new[kept_positions] = new_pos[: len(kept_positions)]
    changed_positions = np.sort(new_pos[len(kept_positions) :])
    org_pos = {o.id: p for p, o in enumerate(organisations)}

    present = {o.id for o in fresh}
    rows_by_kind = {
        kind: sorted(
            (s for s in changes.statements if s.kind == kind and s.organisation_id in present),
            key=lambda s: (org_pos[s.organisation_id], s.id),
        )
        for kind in KINDS
    }
    expanded = {kind: [expand(s.text) for s in rows] for kind, rows in rows_by_kind.items()}

    # Rows: the kept ones (previous order, positions moved) and the fresh ones, sorted by
    # (organisation position, statement id) as a build sorts them.
    sources: dict[str, IntArray] = {}
    added: dict[str, IntArray] = {}
    removed = 0
    for kind in KINDS:
        table = index.tables[kind]
        kept_rows = np.flatnonzero(keep_org[table.org_pos])
        removed += len(table) - len(kept_rows)
        rows = rows_by_kind[kind]
        added[kind] = np.array([s.id for s in rows], dtype=np.int64)
        row_org = np.concatenate(
            [
                old_to_new[table.org_pos[kept_rows]],
                np.array([org_pos[s.organisation_id] for s in rows], dtype=np.int64),
            ]
        )
        row_ids = np.concatenate([table.ids[kept_rows], added[kind]])
        sources[kind] = np.concatenate(
            [kept_rows, len(table) + np.arange(len(rows), dtype=np.int64)]
        )[np.lexsort((row_ids, row_org))]

    n_rows = sum(len(s) for s in sources.values())
    n_added = sum(len(rows) for rows in rows_by_kind.values())
    drift = index.changed_since_fit + removed + n_added + len(touched)
    n_needs = len(sources["need"])
    if refit is None:
        refit = _past_share(drift, n_rows + len(organisations), refit_share)
    # What a delta cannot extend: an empty side the last fit never saw.
    refit = (
        refit
        or not organisations
        or n_rows == 0
        or index.words is None
        or index.profile_words is None
        or (index.need_words is None and n_needs > 0)
    )

    lexical = index.lexical
    new_counts = {
        kind: (
            lexical.counts(expanded[kind])
            if expanded[kind]
            else sparse.csr_matrix((0, lexical.n_features), dtype=np.float64)
        )
        for kind in KINDS
    }
    # Rows of counts and tf-idf: the previous ones moved, the fresh ones added (no copy
    # of the previous rows); a refit reads them all.
    counts: dict[str, Any] = {
        kind: index.tables[kind].counts.with_rows(new_counts[kind], sources[kind]) for kind in KINDS
    }
    weighted: dict[str, Any]
    if refit:
        counts = {kind: rows.tocsr() for kind, rows in counts.items()}
        lexical = LexicalEncoder(
            ngram_range=lexical.ngram_range, n_features=lexical.n_features, max_df=lexical.max_df
        )
        all_counts = sparse.vstack([counts[kind] for kind in KINDS], format="csr")
        if all_counts.shape[0] == 0:  # as a build does
            all_counts = lexical.counts(["vide"])
        lexical.fit_counts(all_counts)
        weighted = {kind: lexical.weight(counts[kind]) for kind in KINDS}
    else:
        weighted = {
            kind: index.tables[kind].lexical.with_rows(
                lexical.weight(new_counts[kind]), sources[kind]
            )
            for kind in KINDS
        }

    tables: dict[str, StatementTable] = {}
    for kind in KINDS:
        table, rows, src = index.tables[kind], rows_by_kind[kind], sources[kind]
        n = len(table)
        row_org = np.concatenate(
            [
                old_to_new[table.org_pos],
                np.array([org_pos[s.organisation_id] for s in rows], dtype=np.int64),
            ]
        )
        tables[kind] = StatementTable(
            ids=np.concatenate([table.ids, added[kind]])[src],
            org_pos=row_org[src],
            texts=[table.texts[s] if s < n else rows[s - n].text for s in src.tolist()],
            hashes=[table.hashes[s] if s < n else rows[s - n].content_hash for s in src.tolist()],
            counts=counts[kind],
            lexical=weighted[kind],
        )

    # Word stems: by text, read only for the fresh rows.
    stems = dict(index.statement_stems)
    for kind in KINDS:
        for s, text in zip(rows_by_kind[kind], expanded[kind], strict=True):
            stems[_key(s)] = word_stems(text)
    by_org: dict[int, list[str]] = {}
    for s in rows_by_kind["competency"]:
        by_org.setdefault(s.organisation_id, []).extend(stems[_key(s)])
    fresh_documents = [
        (word_stems(expand(o.description)) if o.description else []) + by_org.get(o.id, [])
        for o in fresh
    ]
    documents = [
        index.profile_tokens[s] if s < old_n else fresh_documents[s - old_n]
        for s in org_sources.tolist()
    ]
    need_table = tables["need"]
    need_keys = [
        _row_key(h, i) for h, i in zip(need_table.hashes, need_table.ids.tolist(), strict=True)
    ]
    if refit:
        live = {
            _row_key(h, i)
            for t in tables.values()
            for h, i in zip(t.hashes, t.ids.tolist(), strict=True)
        }
        stems = {k: v for k, v in stems.items() if k in live}
        words = WordEncoder().fit_tokens(documents)
        profile_words = words.transform_tokens(documents) if documents else None
        need_words = words.transform_tokens([stems[k] for k in need_keys]) if need_keys else None
    else:
        assert index.words is not None  # refit otherwise
        words = index.words
        assert index.profile_words is not None
        width = index.profile_words.shape[1]
        profile_words = take_rows(
            index.profile_words,
            words.transform_tokens(fresh_documents)
            if fresh_documents
            else sparse.csr_matrix((0, width)),
            org_sources,
        )
        need_words = None
        if n_needs:
            new_needs = [stems[_key(s)] for s in rows_by_kind["need"]]
            fresh_need_words = (
                words.transform_tokens(new_needs) if new_needs else sparse.csr_matrix((0, width))
            )
            need_words = take_rows(index.need_words, fresh_need_words, sources["need"])

    # Word counts: the touched organisations' previous texts out, their current ones in.
    vocabulary = index.vocabulary.copy()
    gone = word_counts(
        [
            table.texts[r]
            for table in index.tables.values()
            for r in np.flatnonzero(~keep_org[table.org_pos]).tolist()
        ]
        + [
            description
            for p in np.flatnonzero(~keep_org).tolist()
            if (description := index.organisations[p].description)
        ]
    )
    vocabulary.subtract(gone)
    for word in gone:
        if vocabulary[word] <= 0:
            del vocabulary[word]
    vocabulary.update(
        word_counts(
            [s.text for rows in rows_by_kind.values() for s in rows]
            + [o.description for o in fresh if o.description]
        )
    )

    new_index = NetworkIndex(
        space=index.space,
        organisations=organisations,
        tables=tables,
        lexical=lexical,
        org_pos=org_pos,
        words=words,
        profile_words=profile_words,
        need_words=need_words,
        statement_stems=stems,
        profile_tokens=documents,
        changed_since_fit=0 if refit else drift,
        vocabulary=vocabulary,
    )
    return Delta(
        index=new_index,
        refitted=refit,
        touched=touched,
        old_to_new=old_to_new,
        changed_positions=changed_positions,
        org_sources=org_sources,
        sources=sources,
        added=added,
    )
