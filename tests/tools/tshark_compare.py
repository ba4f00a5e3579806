#!/usr/bin/env python3
"""Checks pptp-alg's decoding of every PPTP control message in every capture against
tshark's, field by field: message type, Call IDs, result and error codes, and every other
field both decoders name.

usage: tshark_compare.py PPTP_ALG [CAPTURE ...]
Without captures: every capture in tests/data/pcaps and in ../shared/pcaps (beside the repo).
Exit status 0 when every message agrees, 1 on any difference, 2 when tshark is missing.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Our field name -> tshark's, where they differ. result_code depends on the message type.
FIELD_MAP = {
    "vendor_string": "pptp.vendor_name",
    "packet_recv_window_size": "pptp.packet_receive_window_size",
    "error_code": "pptp.error",
    "cause_code": "pptp.cause",
    "call_bearer_type": "pptp.bearer_type",
    "call_statistics": "pptp.call_Statistics",
}
RESULT_FIELD = {2: "pptp.control_result", 4: "pptp.stop_result", 6: "pptp.echo_result",
                8: "pptp.out_result", 10: "pptp.in_result", 13: "pptp.disc_result"}
# Fields that must be present in tshark's decoding whenever the message type has them.
REQUIRED = {"call_id", "peer_call_id", "result_code", "error_code"}
SKIP = {"reserved1", "reserved2", "packet_transmit_delay"}


def tshark_name(msg_type, field):
    if field == "result_code":
        return RESULT_FIELD.get(msg_type)
    return FIELD_MAP.get(field, "pptp." + field)


def as_value(v):
    if isinstance(v, str):
        try:
            return int(v, 16) if v.startswith("0x") else int(v)
        except ValueError:
            return v
    return v


def tshark_messages(capture):
    out = subprocess.run(["tshark", "-n", "-r", capture, "-T", "json", "-Y", "pptp"],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"tshark failed on {capture}: {out.stderr.strip()}")
    msgs = []
    for pkt in json.loads(out.stdout or "[]"):
        layers = pkt["_source"]["layers"]
        frame = int(layers["frame"]["frame.number"])
        pptp = layers.get("pptp")
        for layer in (pptp if isinstance(pptp, list) else [pptp]):
            if layer and "pptp.control_message_type" in layer:
                msgs.append((frame, layer))
    return msgs


def our_messages(binary, capture):
    out = subprocess.run([binary, "inspect", "--json", capture], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"pptp-alg inspect failed on {capture}: {out.stderr.strip()}")
    return [(m["packet"], m) for m in json.loads(out.stdout)["messages"]]


def compare(binary, capture):
    theirs = tshark_messages(capture)
    ours = our_messages(binary, capture)
    problems = []
    if len(theirs) != len(ours):
        problems.append(f"{len(ours)} messages decoded, tshark has {len(theirs)}: "
                        f"ours at {[p for p, _ in ours]}, tshark's at {[p for p, _ in theirs]}")
    checked = 0
    for (pkt, mine), (tpkt, layer) in zip(ours, theirs):
        where = f"packet {pkt}"
        if pkt != tpkt:
            problems.append(f"{where}: tshark puts this message at packet {tpkt}")
            continue
        mtype = mine["type"]
        if int(layer["pptp.control_message_type"]) != mtype:
            problems.append(f"{where}: type {mtype}, tshark says {layer['pptp.control_message_type']}")
            continue
        for field, value in mine["fields"].items():
            if field in SKIP:
                continue
            name = tshark_name(mtype, field)
            if name is None or name not in layer:
                if field in REQUIRED:
                    problems.append(f"{where} ({mine['name']}): tshark has no {name or field}")
                continue
            theirs_v = as_value(layer[name])
            if isinstance(value, str) and (not isinstance(theirs_v, str) or "\\x" in value):
                continue  # tshark renders odd text its own way; numbers are what matter
            if theirs_v != value:
                problems.append(f"{where} ({mine['name']}): {field} = {value!r}, tshark {name} = {theirs_v!r}")
            checked += 1
    return len(ours), checked, problems


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    if shutil.which("tshark") is None:
        print("tshark_compare: tshark is not installed (apt-get install tshark)", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    captures = sys.argv[2:]
    if not captures:
        for d in (os.path.join(REPO, "tests", "data", "pcaps"),
                  os.path.join(os.path.dirname(REPO), "shared", "pcaps")):
            if os.path.isdir(d):
                # tshark's PPTP dissector does not reassemble messages split across TCP
                # segments (it decodes every segment from its start), so the crafted
                # captures, which split and coalesce messages on purpose, are checked by
                # their golden files instead.
                captures += sorted(os.path.join(d, f) for f in os.listdir(d)
                                   if f.endswith((".pcap", ".pcapng")) and not f.startswith("crafted-"))
    failed = 0
    total_msgs = 0
    total_fields = 0
    for cap in captures:
        try:
            n, fields, problems = compare(binary, cap)
        except RuntimeError as e:
            n, fields, problems = 0, 0, [str(e)]
        total_msgs += n
        total_fields += fields
        status = "ok" if not problems else "DIFFERS"
        print(f"{status:8} {os.path.basename(cap)}: {n} control messages, {fields} fields compared")
        for p in problems:
            print(f"         {p}")
        failed += bool(problems)
    print(f"tshark_compare: {len(captures) - failed} passed, {failed} failed "
          f"({total_msgs} messages, {total_fields} fields)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
