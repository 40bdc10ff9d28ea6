"""Seeded impairment relay for the end-to-end tests (issue 6): netem is missing here.

Runs in a namespace R between A and B whose kernel does not forward (ip_forward=0). It
reads the IPv4 packets addressed to R's MAC on both of R's interfaces (AF_PACKET) and
sends each out of the other interface to the peer's MAC, so A and B route through R as
through a router. ESP from A on SPI `spi` follows a plan instead: the k-th such packet
to arrive (k = 1, 2, ...) is kept, and its arrival emits the packets the plan lists for
k (by arrival number), in that order; an arrival number absent from the plan emits
itself. So `k:` drops packet k, `k: k k` duplicates it, `k:` with `t: t k` holds k back
until t has arrived (reorder), and `t: t k` after `k: k` replays k later.

usage: impair_relay.py RA RB A_MAC B_MAC LOCAL_ADDRS PLAN SPI COUNT SECONDS

  LOCAL_ADDRS  R's own addresses (comma-separated): packets to them stay with R's kernel
  PLAN         lines `k out1 out2 ...` (no outs: dropped)
  COUNT        the plan's last arrival number: after it, one JSON summary line
               {"arrived": [seq, ...], "emitted": [k, ...], "missing": [k, ...],
                "forwarded": n} (sequence numbers as on the wire, emitted and missing
               by arrival number), then it relays on until killed or SECONDS pass.

Prints `ready` once both sockets are bound.
"""

import json
import select
import socket
import sys
import time

ETH_P_IP = 0x0800
PACKET_HOST = 0

ra, rb, a_mac, b_mac, local, plan_path, spi, count, seconds = sys.argv[1:10]
local = {socket.inet_aton(a) for a in local.split(",") if a}
spi = int(spi, 0).to_bytes(4, "big")
count = int(count)


def bind(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((ifname, ETH_P_IP))
    return s


def mac(m):
    return bytes.fromhex(m.replace(":", ""))


plan = {}
with open(plan_path) as f:
    for line in f:
        w = line.split()
        if w:
            plan[int(w[0])] = [int(x) for x in w[1:]]

sa, sb = bind(ra), bind(rb)
# Where each side's packets go: out of the other interface, to the other host.
route = {sa: (sb, (rb, ETH_P_IP, 0, 0, mac(b_mac))), sb: (sa, (ra, ETH_P_IP, 0, 0, mac(a_mac)))}
kept = {}
arrived = []
emitted = []
missing = []
forwarded = 0
print("ready", flush=True)

end = time.time() + float(seconds)
while time.time() < end:
    ready, _, _ = select.select([sa, sb], [], [], 0.2)
    for s in ready:
        while True:
            try:
                data, addr = s.recvfrom(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            # Only what was sent to R (not what R sends, nor broadcasts), IPv4, not for R.
            if addr[2] != PACKET_HOST or len(data) < 20 or data[0] >> 4 != 4:
                continue
            if data[16:20] in local:
                continue
            out, dst = route[s]
            ihl = (data[0] & 0x0F) * 4
            if s is sa and data[9] == 50 and data[ihl : ihl + 4] == spi and len(arrived) < count:
                arrived.append(int.from_bytes(data[ihl + 4 : ihl + 8], "big"))
                k = len(arrived)
                kept[k] = data
                for o in plan.get(k, [k]):
                    if o in kept:
                        out.sendto(kept[o], dst)
                        emitted.append(o)
                    else:
                        missing.append(o)
                if k == count:
                    summary = {
                        "arrived": arrived,
                        "emitted": emitted,
                        "missing": missing,
                        "forwarded": forwarded,
                    }
                    print(json.dumps(summary), flush=True)
                continue
            out.sendto(data, dst)
            forwarded += 1
