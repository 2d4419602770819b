#!/usr/bin/env python3
"""Writes the seed corpora of the cargo-fuzz targets (fuzz/corpus/<target>/) from the
vendored captures: frames (decode), UDP payloads sorted into RTP, RTCP and SIP, SDP bodies
of the SIP, small capture files, and engine record streams with time jumps. Seeds are
kept small (a few per kind and capture); cargo fuzz cmin can shrink the grown corpora."""
import hashlib, os, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PCAPS = os.path.join(ROOT, "tests", "data", "pcaps")
OUT = os.path.join(ROOT, "fuzz", "corpus")
LINK_INDEX = {1: 0, 113: 1, 276: 2, 101: 3, 0: 4}  # order of fuzz_targets::LINKS

def records(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        ns = magic == b"\x4d\x3c\xb2\xa1"
        link = struct.unpack("<I", data[20:24])[0]
        o = 24
        while o + 16 <= len(data):
            s, f, incl, _ = struct.unpack("<IIII", data[o:o + 16])
            yield link, s * 10**9 + (f if ns else f * 1000), data[o + 16:o + 16 + incl]
            o += 16 + incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        o, links = 0, []
        while o + 12 <= len(data):
            kind, blen = struct.unpack("<II", data[o:o + 8])
            if blen < 12:
                break
            if kind == 1:
                links.append(struct.unpack("<H", data[o + 8:o + 10])[0])
            elif kind == 6:
                iface, hi, lo, cap = struct.unpack("<IIII", data[o + 8:o + 24])
                link = links[iface] if iface < len(links) else 1
                yield link, ((hi << 32) | lo) * 1000, data[o + 28:o + 28 + cap]
            o += blen

def udp_payload(link, frame):
    if link != 1 or len(frame) < 14:
        return None
    et, o = struct.unpack(">H", frame[12:14])[0], 14
    while et in (0x8100, 0x88A8) and len(frame) >= o + 4:
        et, o = struct.unpack(">H", frame[o + 2:o + 4])[0], o + 4
    if et == 0x0800 and len(frame) >= o + 20 and frame[o + 9] == 17:
        ihl = (frame[o] & 15) * 4
        return frame[o + ihl + 8:]
    if et == 0x86DD and len(frame) >= o + 48 and frame[o + 6] == 17:
        return frame[o + 48:]
    return None

def kind(p):
    if p[:3] in (b"INV", b"SIP", b"ACK", b"BYE", b"CAN", b"OPT", b"REG", b"PRA", b"UPD", b"NOT", b"SUB", b"INF", b"REF", b"MES"):
        return "sip"
    if len(p) >= 8 and p[0] >> 6 == 2:
        return "rtcp" if 192 <= p[1] <= 223 else "rtp"
    return None

def save(target, blob):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(blob).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)

def main():
    for name in sorted(os.listdir(PCAPS)):
        if not name.endswith((".pcap", ".pcapng")):
            continue
        path = os.path.join(PCAPS, name)
        recs = list(records(path))
        seen = {"sip": 0, "rtp": 0, "rtcp": 0}
        for link, _, frame in recs[:400]:
            p = udp_payload(link, frame)
            k = kind(p) if p else None
            if k and seen[k] < 3:
                seen[k] += 1
                save(k, p)
                if k == "sip" and b"\r\n\r\n" in p and b"v=0" in p:
                    save("sdp", p.split(b"\r\n\r\n", 1)[1])
        for link, _, frame in recs[:3]:
            if link in LINK_INDEX:
                save("decode", bytes([LINK_INDEX[link]]) + frame)
        # The file's head (at most 12 records) as a whole capture.
        raw = open(path, "rb").read()
        save("capture_file", raw[: min(len(raw), 6000)])
        # Engine records: the first 60 frames, one with a jump of a day, one back.
        if recs and recs[0][0] in LINK_INDEX:
            out, prev = bytearray(), recs[0][1]
            for i, (link, t, frame) in enumerate(recs[:60]):
                step = max(-2**31 + 1, min(2**31 - 1, (t - prev) // 10**6))
                if i == 20:
                    step = 86_400_000
                if i == 40:
                    step = -86_400_000
                prev = t
                frame = frame[:255]
                out += bytes([LINK_INDEX[link]]) + struct.pack("<i", step) + bytes([len(frame)]) + frame
            save("engine", bytes(out))

if __name__ == "__main__":
    main()
