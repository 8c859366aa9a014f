"""The Polars anchor: 17 conversation features written independently of the project, in Polars.

Issue 13 measures ``featurize`` against what a user could write instead: a Polars lazy
query over the RAW Parquet export (the files ``validate`` reads) computing the 12 core
conversation features and 5 text-length features for every ticket as of the export's
latest timestamp. :func:`anchor_features` is that query. It shares no code with
``features/`` (only the contract's vocabularies), so ``tests/test_benchmark_anchor.py``
comparing the two on every row and column checks both, and the benchmark stage
``anchor_polars`` times it beside ``featurize_raw`` (the project's validate + featurize
on the same export) in one run.

It reads the benchmark's exports as a user would who knows them clean (ISO-8601 text
with ``Z``, no blanks to strip); it does not validate (the project does, and pays for
it). Definitions, as ``features/build.py`` states them: a ticket's events in (second,
file order) order, field events aside; "public" messages are customer and agent
messages; texts are cut to ``ingest.max_text_chars`` as validation cuts them.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.core import contract

ANCHOR_FEATURES = (
    "customer_messages", "agent_replies", "ping_pong_count", "first_reply_minutes", "current_wait_minutes",
    "minutes_since_last_agent_reply", "reopens", "times_solved", "group_hops", "assignee_hops", "notes",
    "age_minutes",
    # text lengths
    "last_message_chars", "customer_text_chars", "last_message_question_marks", "last_message_exclamations",
    "customer_exclamations",
)
_ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
# Event order within a ticket as one int64: epoch second, then row in the file (rows < 2**32).
_ROW_BITS = 32


def _seconds(column: str, schema: pl.Schema) -> pl.Expr:
    """A timestamp column (typed, or ISO-8601 UTC text as older exports hold it) to epoch seconds."""
    if schema[column] == pl.String:
        return pl.col(column).str.strptime(pl.Datetime("us"), _ISO_SECONDS).dt.epoch("s")
    return pl.col(column).dt.epoch("s")


def _previous(column: str) -> pl.Expr:
    """``column`` at the previous event of the same ticket (null at a ticket's first); rows in timeline order."""
    return pl.when(pl.col("position") == pl.col("position").shift(1)).then(pl.col(column).shift(1))


def _changes(column: str) -> pl.Expr:
    """Events whose ``column`` differs from the ticket's previous event's (the first is no change)."""
    previous = _previous(column)
    return previous.is_not_null() & (previous != pl.col(column))


def anchor_features(export_dir: str | Path, max_text_chars: int, streaming: bool = True) -> pl.DataFrame:
    """One row per ticket (``ticket_id`` then :data:`ANCHOR_FEATURES`), as of the export's latest timestamp."""
    export_dir = Path(export_dir)
    tickets = pl.scan_parquet(export_dir / "tickets.parquet")
    tickets = (tickets.select("ticket_id", created_s=_seconds("created_at", tickets.collect_schema()))
               .with_row_index("position"))
    raw = pl.scan_parquet(export_dir / "events.parquet")
    raw = raw.with_row_index("row").with_columns(at_s=_seconds("at", raw.collect_schema()))
    as_of_s = pl.concat([tickets.select(s=pl.col("created_s").max()), raw.select(s=pl.col("at_s").max())]).select(
        pl.col("s").max())
    # One sort of narrow rows: the ticket's position, the time order, and what the streams read;
    # text is measured before, so that no text is moved around.
    text = pl.col("body").fill_null("").str.slice(0, max_text_chars)
    customer_message = (pl.col("kind") == "message") & (pl.col("actor") == "customer")
    events = (raw.filter(pl.col("kind") != contract.FIELD_EVENT)
              .select("ticket_id", "kind", "at_s", "value",
                      order=(pl.col("at_s") * 2**_ROW_BITS) + pl.col("row").cast(pl.Int64),
                      public=(pl.col("kind") == "message") & pl.col("actor").is_in(["customer", "agent"]),
                      customer=customer_message,
                      chars=pl.when(customer_message).then(text.str.len_chars()),
                      question_marks=pl.when(customer_message).then(text.str.count_matches("[?？]")),
                      exclamations=pl.when(customer_message).then(text.str.count_matches("[!！]")))
              .join(tickets.select("ticket_id", "position"), on="ticket_id", how="inner")
              .drop("ticket_id")
              .sort(["position", "order"]))

    public = events.filter(pl.col("public"))
    customer, agent = pl.col("customer"), pl.col("customer").not_()
    stretch_begins = customer & _previous("customer").fill_null(False).not_()
    conversation = public.with_columns(flip=_changes("customer"), stretch_begins=stretch_begins).group_by(
        "position").agg(
        customer_messages=customer.sum(),
        agent_replies=agent.sum(),
        ping_pong_count=pl.col("flip").sum(),
        first_agent_s=pl.col("at_s").filter(agent).first(),
        last_agent_s=pl.col("at_s").filter(agent).last(),
        last_is_customer=customer.last(),
        stretch_start_s=pl.col("at_s").filter(pl.col("stretch_begins")).last(),
        last_message_chars=pl.col("chars").filter(customer).last(),
        customer_text_chars=pl.col("chars").filter(customer).sum(),
        last_message_question_marks=pl.col("question_marks").filter(customer).last(),
        last_message_exclamations=pl.col("exclamations").filter(customer).last(),
        customer_exclamations=pl.col("exclamations").filter(customer).sum(),
    )

    was_done = _previous("done").fill_null(False)  # before the first status event the ticket is new
    status = (events.filter(pl.col("kind") == "status")
              .with_columns(done=pl.col("value").is_in(list(contract.DONE_STATUSES)))
              .with_columns(was_done=was_done)
              .group_by("position")
              .agg(reopens=(pl.col("was_done") & pl.col("done").not_()).sum(),
                   times_solved=(pl.col("done") & pl.col("was_done").not_()).sum(),
                   done_now=pl.col("done").last()))

    def hops(kind: str) -> pl.LazyFrame:
        return (events.filter(pl.col("kind") == kind).with_columns(hop=_changes("value"))
                .group_by("position").agg(pl.col("hop").sum().alias(f"{kind}_hops")))

    notes = events.filter(pl.col("kind") == "note").group_by("position").agg(notes=pl.len())

    table = tickets.join(as_of_s.select(as_of_s="s"), how="cross")
    for part in (conversation, status, hops("group"), hops("assignee"), notes):
        table = table.join(part, on="position", how="left")
    counts = ["customer_messages", "agent_replies", "ping_pong_count", "reopens", "times_solved", "group_hops",
              "assignee_hops", "notes", "last_message_chars", "customer_text_chars", "last_message_question_marks",
              "last_message_exclamations", "customer_exclamations"]
    minutes = lambda later, earlier: (later - earlier) / 60.0  # noqa: E731
    waiting = pl.col("last_is_customer").fill_null(False) & pl.col("done_now").fill_null(False).not_()
    table = (table.filter(pl.col("created_s") <= pl.col("as_of_s"))
             .with_columns([pl.col(name).fill_null(0).cast(pl.Float64) for name in counts])
             .with_columns(
                 first_reply_minutes=minutes(pl.col("first_agent_s"), pl.col("created_s")),
                 current_wait_minutes=pl.when(waiting)
                 .then(minutes(pl.col("as_of_s"), pl.col("stretch_start_s"))).otherwise(0.0),
                 minutes_since_last_agent_reply=minutes(pl.col("as_of_s"), pl.col("last_agent_s")),
                 age_minutes=minutes(pl.col("as_of_s"), pl.col("created_s")),
             )
             .sort("position")
             .select("ticket_id", *ANCHOR_FEATURES))
    return table.collect(engine="streaming" if streaming else "auto")
