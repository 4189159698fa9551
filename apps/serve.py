"""Serves a run's web page (its MediaPipe model in the browser) on localhost and prints the URL.

The folder is the run's `web/` (`export.web`); a run made before it had one gets it
written first, from its MediaPipe model. Open the URL in any browser; Ctrl-C stops.

    python -m apps.serve --run=runs/demo                       # http://127.0.0.1:8000/
    python -m apps.serve --run=runs/demo --web_assets=local    # rewrite the page for use with no network
    python -m apps.serve --web_dir=runs/demo/web --port=0      # a folder as it is, on a free port
"""

import os
import threading

from absl import flags

from kdistill import cli
from kdistill.errors import KdistillError
from kdistill.export import web

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("run", "runs/demo", "A run folder (apps.demo's --out_dir); its web/ folder is served.")
    flags.DEFINE_string("web_dir", None, "A web folder to serve as it is, instead of --run's.")
    flags.DEFINE_enum("web_assets", None, list(web.ASSETS), "Rewrite the run's web folder with MediaPipe's web "
                      "assets from the CDN or copied locally (make web-deps); default: serve it as it is.")
    flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every interface, e.g. for a phone "
                        "on the same network).")
    flags.DEFINE_integer("port", 8000, "Port to listen on; 0 picks a free one.", lower_bound=0)


def main(argv):
    del argv
    folder = FLAGS.web_dir or folder_for_run(FLAGS.run, FLAGS.web_assets)
    with web.serve(folder, FLAGS.host, FLAGS.port, verbose=True) as url:
        print(f"serving {folder} at {url} (Ctrl-C stops)", flush=True)
        wait(url)


def folder_for_run(run, assets=None):
    """The run's web folder, written first when it has none or when `assets` is asked for."""
    if not os.path.isdir(run):
        raise KdistillError(f"--run={run}: no such run folder; pass the --out_dir of a finished run")
    folder = os.path.join(run, web.WEB_DIR)
    if assets or not os.path.isfile(os.path.join(folder, web.PAGE_FILE)):
        model = web.find_model(run)
        summary = os.path.join(run, "summary.json")
        web.write(folder, model, web.model_info(model, summary if os.path.isfile(summary) else None), assets or "cdn")
    return folder


def wait(url):
    """Blocks until Ctrl-C (the tests replace it)."""
    del url
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
