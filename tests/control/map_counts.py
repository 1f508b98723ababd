"""The memory map as a browser drew it, against the snapshots it was drawn from.

    map_counts.py DOM_FILE SNAPSHOT... [--require STATE,...] [--tag TAG]

DOM_FILE is what `chromium --headless --dump-dom` printed for the page; SNAPSHOT the
device snapshots (docs/snapshot.md), in the page's order. Counts segments and blocks by
state in both (from the snapshots by the documented rules, independently of the page),
checks that the script drew the page (data-rendered="1") without an error
(data-script-errors="0") and that no tag became markup. --require: segment or block
states the snapshots must hold, so that the test covers them; --tag: a tag the page
must show on a block exactly as given. Prints the counts; exits 1 naming each mismatch.
"""

import argparse
import collections
import html.parser
import json
import sys


def snapshot_counts(paths):
    counts = collections.Counter()
    sizes = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            snap = json.load(f)
        assert snap["format"] == "gpumem.snapshot", path
        counts["devices"] += 1
        for seg in snap["segments"]:
            if not seg["mapped"]:
                state = "released"
            elif any(b["allocated"] for b in seg["blocks"]):
                state = "mapped"
            else:
                state = "cached"
            counts["segments"] += 1
            counts["segment " + state] += 1
            for b in seg["blocks"]:
                counts["blocks"] += 1
                counts["block " + (b["state"] if b["allocated"] else "free")] += 1
                sizes.append(b["size"])
        counts["fragmentation bars"] += 1 + len(snap["statistics"]["tags"])
        counts["statistics rows"] += 1 + len(snap["statistics"]["tags"])
    return counts, sizes


class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()
        self.sizes = []
        self.block_tags = set()
        self.body = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.body = a
        if tag == "b":
            self.counts["injected <b>"] += 1
        if tag == "section" and "device" in classes:
            self.counts["devices"] += 1
        if "segment" in classes:
            self.counts["segments"] += 1
            self.counts["segment " + a.get("data-state", "?")] += 1
        if "block" in classes:
            self.counts["blocks"] += 1
            self.counts["block " + a.get("data-state", "?")] += 1
            self.sizes.append(int(a.get("data-size", "-1")))
            self.block_tags.add(a.get("data-tag"))
        if "frag-bar" in classes:
            self.counts["fragmentation bars"] += 1
        if tag == "table":
            self.in_stats = "stats" in classes
        if tag == "tbody" and self.in_stats:
            self.in_stats_body = True
        if tag == "tr" and self.in_stats_body:
            self.counts["statistics rows"] += 1

    in_stats = in_stats_body = False

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_stats = self.in_stats_body = False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dom")
    ap.add_argument("snapshots", nargs="+")
    ap.add_argument("--require", default="")
    ap.add_argument("--tag", action="append", default=[])
    args = ap.parse_args()

    want, want_sizes = snapshot_counts(args.snapshots)
    dom = Dom()
    with open(args.dom, encoding="utf-8") as f:
        dom.feed(f.read())

    problems = []
    if dom.body.get("data-rendered") != "1":
        problems.append("the page was not drawn: data-rendered=%r" % dom.body.get("data-rendered"))
    if dom.body.get("data-script-errors") != "0":
        problems.append("script errors: data-script-errors=%r" % dom.body.get("data-script-errors"))
    if dom.counts["injected <b>"]:
        problems.append("a tag became markup: %d <b> element(s)" % dom.counts["injected <b>"])
    for key in sorted(set(want) | set(dom.counts) - {"injected <b>"}):
        if want[key] != dom.counts[key]:
            problems.append("%s: the page shows %d, the snapshots hold %d" % (key, dom.counts[key], want[key]))
    if dom.sizes != want_sizes:
        problems.append("block sizes differ: page %s..., snapshots %s..." % (dom.sizes[:8], want_sizes[:8]))
    for state in filter(None, args.require.split(",")):
        if want["segment " + state] == 0 and want["block " + state] == 0:
            problems.append("the snapshots hold no segment or block %s: the test does not cover it" % state)
    for tag in args.tag:
        if tag not in dom.block_tags:
            problems.append("no block shows tag %r (tags shown: %s)" % (tag, sorted(dom.block_tags)))

    print(", ".join("%s %d" % (k, want[k]) for k in sorted(want)))
    for p in problems:
        print("MISMATCH: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
