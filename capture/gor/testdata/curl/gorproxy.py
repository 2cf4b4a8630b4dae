#!/usr/bin/env python3
# A recording proxy that writes GoReplay's published file format, written
# apart from Reprise's Go code so it cross-checks it: each request and its
# response become two payloads, "TYPE ID TIMESTAMP_NS LATENCY_NS" (or the
# three-field header of GoReplay before 1.0), the raw bytes, then the
# separator "\n\U0001F435\U0001F648\U0001F649\n". Usage:
#   gorproxy.py LISTEN_PORT UPSTREAM_PORT OUT.gor [3|4] [COUNT]
# It serves COUNT connections, one request each (clients send
# "Connection: close"), then exits.
import socket, sys, time, uuid

SEP = "\n\U0001F435\U0001F648\U0001F649\n".encode()

def read_message(sock, is_response, head_only=False):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data, time.time_ns()
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
    if head_only:
        return data, time.time_ns()
    if "content-length" in fields:
        need = int(fields["content-length"])
        while len(body) < need:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
            data += chunk
    elif fields.get("transfer-encoding", "").lower() == "chunked":
        while not data.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    elif is_response:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data, time.time_ns()

def header(typ, id_, start, end, fields):
    if fields == 3:
        return f"{typ} {id_} {start}\n".encode()
    return f"{typ} {id_} {start} {end - start}\n".encode()

def main():
    port, up, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    fields = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 1 << 30
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    with open(out, "wb") as f:
        for _ in range(count):
            c, _ = ls.accept()
            start = time.time_ns()
            req, req_end = read_message(c, False)
            s = socket.create_connection(("127.0.0.1", up))
            s.sendall(req)
            head_req = req.startswith(b"HEAD ")
            resp_start = time.time_ns()
            resp, resp_end = read_message(s, True, head_only=head_req)
            c.sendall(resp)
            c.close(); s.close()
            id_ = uuid.uuid4().hex[:24]
            f.write(header(1, id_, start, req_end, fields) + req + SEP)
            f.write(header(2, id_, resp_start, resp_end, fields) + resp + SEP)
            f.flush()

main()
