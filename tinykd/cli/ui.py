"""Commands of the user interfaces: report, label."""

from __future__ import annotations

from pathlib import Path

from tinykd.cli.common import config_from_args, pipeline_options


def add_parsers(sub) -> None:
    p = sub.add_parser("report", help="HTML and Markdown report of a run, with plots, fit and verification",
                       description="Write runs/NAME/report.html (self-contained: images embedded, opens offline) "
                                   "and report.md from the run's results, the bundles' manifests and verify.json.")
    p.add_argument("run_dir", nargs="?", type=Path, metavar="RUN_DIR", help="a run folder (default: runs/NAME "
                   "of the pipeline file)")
    p.add_argument("--builds", type=Path, metavar="DIR",
                   help="folder of bundles; those built from the run's INT8 student are listed (default: build, "
                        "when it exists)")
    pipeline_options(p, training=False)

    p = sub.add_parser("label", help="a local web page to count the people in unlabelled images (count.json)",
                       description="Serve a page on 127.0.0.1 that shows each image whose count in DIR/count.json "
                                   "is null and saves every answer at once (atomically, keeping count.json.bak). "
                                   "Stop it with Ctrl-C.")
    p.add_argument("folder", type=Path, metavar="DIR", help="folder with the images and count.json")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: 8765)")


def cmd_report(args) -> int:
    from tinykd.ui.report import write_report

    html, markdown = write_report(args.run_dir or config_from_args(args).layout.folder, args.builds)
    print(f"tinykd: wrote {html} and {markdown}")
    return 0


def cmd_label(args) -> int:
    from tinykd.ui.label import make_server

    server = make_server(args.folder, args.port)
    host, port = server.server_address[:2]
    print(f"tinykd: labelling {args.folder}/count.json at http://{host}:{port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("tinykd: stopped; every answer is already saved")
    finally:
        server.server_close()
    return 0


COMMANDS = {"report": cmd_report, "label": cmd_label}
