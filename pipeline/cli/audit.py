"""`ccpipe audit ...`: why was this page removed, what did this filter remove, what changed between runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.audit.queries import (
    AuditError,
    diff,
    diff_text,
    explain,
    explain_text,
    run_config,
    run_resolved,
    sample,
    sample_text,
    summary,
    summary_table,
    unfinished,
)
from pipeline.audit.report import write_report
from pipeline.audit.whatif import parse_changes, whatif, whatif_text
from pipeline.cli.common import example, print_json


def guard(fn):
    """An audit error (no ledger, unknown stage, record not found) as one line and exit code 2; so is a run
    that is unfinished or still being written (its ledger is not the whole run), unless `--partial`: then the
    figures come labelled as partial (`args.partial_label`)."""
    def run(args: argparse.Namespace) -> int:
        try:
            runs = [getattr(args, name) for name in ("run", "run_a", "run_b") if getattr(args, name, None)]
            states = [state for state in map(unfinished, runs) if state]
            if states and not args.partial:
                print(f"ccpipe: {states[0]}; --partial shows what its ledger holds so far, labelled as partial",
                      file=sys.stderr)
                return 2
            args.partial_label = "; ".join(states) or None
            if args.partial_label:
                label = f"PARTIAL FIGURES: {args.partial_label}"
                print(label, file=sys.stderr if getattr(args, "json", False) else sys.stdout)
            return fn(args) or 0
        except AuditError as exc:
            print(f"ccpipe: {exc}", file=sys.stderr)
            return 2
    return run


@guard
def cmd_summary(args):
    counts = summary(args.run)
    if args.partial_label:
        counts["partial"] = args.partial_label
    print_json(counts) if args.json else print(summary_table(counts))


@guard
def cmd_explain(args):
    found = explain(args.run, args.record, show_pii=args.show_pii)
    if args.json:
        print_json([{k: v for k, v in row.items()} for row in found])
    else:
        print(explain_text(found))


@guard
def cmd_sample(args):
    found = sample(args.run, args.stage, args.reason, args.n, args.seed)
    print_json(found) if args.json else print(sample_text(found))


@guard
def cmd_diff(args):
    inputs_a, inputs_b = (run_resolved(run)["inputs"] for run in (args.run_a, args.run_b))
    if inputs_a != inputs_b:  # then records of one input show as "(absent)" in the other: not a change of fate
        only_a, only_b = len(set(inputs_a) - set(inputs_b)), len(set(inputs_b) - set(inputs_a))
        print(f"ccpipe: warning: the runs read different inputs ({only_a} file(s) only in {args.run_a}, {only_b} "
              f"only in {args.run_b}): their records show as (absent)", file=sys.stderr)
    result = diff(args.run_a, args.run_b, args.examples, ids=args.json)
    print_json(result) if args.json else print(diff_text(result))


@guard
def cmd_whatif(args):
    if not args.set:
        raise AuditError("whatif: give at least one --set KEY=VALUE, e.g. --set langid.threshold=0.8")
    result = whatif(args.run, parse_changes(run_config(args.run), args.set), args.examples)
    print_json(result) if args.json else print(whatif_text(result))


@guard
def cmd_report(args):
    out = args.output or str(Path(args.run) / "report.html")
    try:
        write_report(args.run, out, args.partial_label)
    except OSError as exc:  # a folder that does not exist or cannot be written
        print(f"ccpipe: {out}: cannot write the report here ({exc.strerror or exc})", file=sys.stderr)
        return 2
    print(f"wrote {out}")


def add_commands(sub) -> None:
    audit = sub.add_parser(
        "audit", help="why documents were kept or removed: funnel, explain, sample, diff, report",
        description="Query a run's decision ledger (RUN/ledger/*.parquet, one row per input record) with DuckDB.",
        **example("ccpipe audit explain out/bench https://example.com/page.html"))
    cmds = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    p = cmds.add_parser("summary", help="the funnel: per stage, records in / kept / dropped by reason",
                        description="The funnel, counted from the ledger: equal to summary.json's counts.",
                        **example("ccpipe audit summary out/bench --json"))
    p.add_argument("run", metavar="RUN")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_summary)

    p = cmds.add_parser("explain", help="one document's whole trail, stage by stage",
                        description="Each stage's decision for a record (by WARC-Record-ID or URL), the values it "
                                    "rested on and the threshold they were held against; for a duplicate, the "
                                    "document kept instead; for PII, the types and positions replaced.",
                        **example("ccpipe audit explain out/bench 'https://www.example.com/page.html'"))
    p.add_argument("run", metavar="RUN")
    p.add_argument("record", metavar="URL_OR_RECORD_ID")
    p.add_argument("--show-pii", action="store_true", help="show replaced PII values unmasked")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_explain)

    p = cmds.add_parser("sample", help="removed (or kept) documents with a text excerpt",
                        description="A reproducible sample of the records dropped at a stage (optionally for one "
                                    "reason), or of kept records with --stage kept.",
                        **example("ccpipe audit sample out/bench --stage quality --reason gopher_below_alpha_threshold -n 5"))
    p.add_argument("run", metavar="RUN")
    p.add_argument("--stage", required=True, help="a stage of the run (reader, blocklist, extract, langid, quality, dedup, pii, tokenize), or kept")
    p.add_argument("--reason", help="only this drop reason")
    p.add_argument("-n", type=int, default=20, help="how many (default 20)")
    p.add_argument("--seed", type=int, default=0, help="another seed, another sample (default 0)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_sample)

    p = cmds.add_parser("diff", help="records whose fate changed between two runs over the same input",
                        description="Counts records by (old fate -> new fate), fate being 'kept' or "
                                    "'stage:reason', matched by WARC-Record-ID, with examples.",
                        **example("ccpipe audit diff out/lang065 out/lang080"))
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--examples", type=int, default=3, help="examples per transition (default 3)")
    p.add_argument("--json", action="store_true", help="machine-readable output, with every changed record id")
    p.set_defaults(func=cmd_diff)

    p = cmds.add_parser("whatif", help="what a threshold change would flip, from the ledger alone (no WARC read)",
                        description="Re-decides every record with new thresholds from the signals in the ledger "
                                    "(language_score, the quality map, classifier_score): records kept -> dropped and "
                                    "dropped -> kept by stage and reason, per language, tokens lost and gained, "
                                    "examples. A record whose new fate depends on something never measured (a "
                                    "later check, dedup) is counted as unknown.",
                        **example("ccpipe audit whatif out/bench --set quality.gopher_quality.min_doc_words=100 "
                                  "--set langid.threshold=0.8"))
    p.add_argument("run", metavar="RUN")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a threshold and its new value (repeatable): langid.threshold, quality.classifier.threshold, "
                        "quality.<filter>.<datatrove parameter>")
    p.add_argument("--examples", type=int, default=5, help="examples each way (default 5)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_whatif)

    p = cmds.add_parser("report", help="one self-contained HTML report: funnel, reasons, histograms, examples",
                        description="Writes one HTML file with no external resources and no scripts: the funnel "
                                    "as a chart, drops per reason, histograms of language score, document length "
                                    "and tokens, and examples per reason. Crawled text is escaped everywhere.",
                        **example("ccpipe audit report out/bench -o report.html"))
    p.add_argument("run", metavar="RUN")
    p.add_argument("-o", "--output", metavar="FILE", help="where to write it (default RUN/report.html)")
    p.set_defaults(func=cmd_report)
    for command in cmds.choices.values():
        command.add_argument("--partial", action="store_true", help="on a run that is unfinished or still being "
                             "written: what its ledger holds so far, labelled as partial (refused otherwise)")
