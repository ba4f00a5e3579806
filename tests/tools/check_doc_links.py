#!/usr/bin/python3
"""Every relative link in README.md and docs/*.md names a file that exists, and every #anchor
a heading of that file (GitHub's rule: lower case, punctuation dropped, spaces to hyphens, a
repeated heading gets -1, -2, ...). Headings change as the docs grow; a link that no longer
lands was found by hand twice.
  check_doc_links.py PROJECT_DIR"""
import glob
import os
import re
import sys

HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"\]\(([^)\s#]*)(?:#([^)\s]+))?\)")


def slug(heading):
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors_of(path):
    found, seen, fenced = set(), {}, False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                fenced = not fenced
            match = None if fenced else HEADING.match(line)
            if not match:
                continue
            base = slug(match.group(1))
            count = seen.get(base, -1) + 1
            seen[base] = count
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(root):
    files = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    anchors = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                for target, anchor in LINK.findall(line):
                    if re.match(r"^[a-z]+:", target):
                        continue  # http:, mailto:
                    dest = os.path.normpath(os.path.join(os.path.dirname(path), target)) if target else path
                    where = f"{os.path.relpath(path, root)}:{number}"
                    if not os.path.exists(dest):
                        yield f"{where}: {target} does not exist"
                    elif anchor and dest.endswith(".md"):
                        if dest not in anchors:
                            anchors[dest] = anchors_of(dest)
                        if anchor not in anchors[dest]:
                            yield f"{where}: {target or os.path.basename(path)} has no heading #{anchor}"


def main():
    bad = list(broken_links(sys.argv[1]))
    for line in bad:
        print(line)
    print(f"check_doc_links: {len(bad)} broken link(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
