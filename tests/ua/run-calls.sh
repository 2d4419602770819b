#!/usr/bin/env bash
# run-calls.sh OUTDIR
#
# Places real SIP calls between real user agents (baresip 1.0.0, linphonec 5.1.65)
# running in two throw-away network namespaces joined by a veth pair, with no
# sound card, no registrar, no ICE/STUN/TURN. One pcap per scenario lands in OUTDIR.
#
#   s1  baresip -> baresip, PCMU, ~6 s of media, BYE
#   s1m as s1 with rtcp-mux (RTCP on the RTP port)
#   s2  baresip -> baresip, two calls back to back in the same processes
#       (rtp_ports 10000-10001 forces both calls onto the same RTP/RTCP ports)
#   s3  baresip -> baresip, opus
#   s4  baresip -> baresip, callee rings (manual answer), caller CANCELs
#   s5  baresip -> baresip, PCMU, /hold then /resume (re-INVITEs), BYE
#   s5b linphonec -> baresip, linphonec 'pause' then 'resume' (linphonec keeps sending on hold)
#   s6a linphonec -> baresip, PCMU (linphonec in file mode: no sound card)
#   s6c linphonec -> baresip with linphonec's SDP saying c=127.0.0.1: one-way RTP on the wire
#   s6b linphonec -> linphonec, PCMU, RTCP-XR enabled on both sides
#
# Env: MEDIA_SECONDS (default 6), XR_RTT_A / XR_RTT_B (linphonec rcvr-rtt mode for s6b,
# default none: see lp_conf), SCENARIOS (space-separated subset, default all),
# PROBE_CMD (a command started inside the caller's namespace before the first scenario
# with `--interface <A's veth end>` appended, capturing what tcpdump captures; it gets
# SIGTERM after the last scenario and up to PROBE_STOP_S (default 30) seconds to exit).
#
# Needs root, iproute2, tcpdump, tshark, baresip, linphonec, perl.
# Exit status: 0 when every scenario's checks passed, 1 otherwise, 2 on setup error.
# Per-scenario: OUTDIR/<s>.pcap, OUTDIR/<s>.streams.txt (tshark rtp,streams),
# OUTDIR/<s>.sip.txt, OUTDIR/logs/<s>-*.log; OUTDIR/SUMMARY.txt has the checks.
set -u
export LC_ALL=C

OUT=${1:?usage: run-calls.sh OUTDIR}
mkdir -p "$OUT/logs" || exit 2
OUT=$(cd "$OUT" && pwd)
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
for b in ip tcpdump tshark baresip linphonec perl timeout; do
	command -v "$b" >/dev/null || { echo "missing: $b" >&2; exit 2; }
done

T0=$(date +%s)
WORK=$(mktemp -d /tmp/ua-calls.XXXXXX)
NSA=uacA$$ NSB=uacB$$                 # namespace names, unique per run
VA=vcA$$ VB=vcB$$                     # veth ends (<= 15 chars)
IPA=10.77.0.1 IPB=10.77.0.2
PIDS=()                                # every background process we start
FAILS=0
SUMMARY=$OUT/SUMMARY.txt
: > "$SUMMARY"

log()  { printf '[%3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" | tee -a "$SUMMARY"; }
check() { # check NAME CONDITION-RESULT(0/1) DETAIL
	if [ "$2" = 0 ]; then log "PASS $1 $3"; else log "FAIL $1 $3"; FAILS=$((FAILS+1)); fi
}

stop_pid() { # stop_pid PID [SIGNAL]: signal, wait up to 3 s, then SIGKILL
	local p=$1 sig=${2:-TERM} i
	kill -0 "$p" 2>/dev/null || return 0
	kill -"$sig" "$p" 2>/dev/null
	for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}

cleanup() {
	local p
	for p in "${PIDS[@]}"; do stop_pid "$p"; done
	exec 7>&- 8>&- 2>/dev/null
	ip netns del "$NSA" 2>/dev/null
	ip netns del "$NSB" 2>/dev/null          # deleting a netns also removes its veth end
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

# ---------------------------------------------------------------- network
ip netns add "$NSA" && ip netns add "$NSB" || exit 2
ip link add "$VA" type veth peer name "$VB" || exit 2
ip link set "$VA" netns "$NSA"; ip link set "$VB" netns "$NSB"
ip -n "$NSA" addr add $IPA/24 dev "$VA"; ip -n "$NSB" addr add $IPB/24 dev "$VB"
for ns in "$NSA" "$NSB"; do ip -n "$ns" link set lo up; done
ip -n "$NSA" link set "$VA" up; ip -n "$NSB" link set "$VB" up
# no default route on purpose: nothing can leave the two namespaces

# ---------------------------------------------------------------- audio source
# 20 s, 8 kHz, mono, S16LE sine 440 Hz (aufile needs rate == ausrc_srate).
WAV=$WORK/tone8k.wav
perl -e '
	my ($sr, $n) = (8000, 8000*20);
	my $data = pack("s<*", map { int(8000*sin(2*3.14159265*440*$_/$sr)) } 0..$n-1);
	print "RIFF", pack("V", 36+length $data), "WAVEfmt ", pack("VvvVVvv", 16, 1, 1, $sr, $sr*2, 2, 16),
	      "data", pack("V", length $data), $data;' > "$WAV" || exit 2

# ---------------------------------------------------------------- helpers
wait_for() { # wait_for FILE REGEX TIMEOUT_S [COUNT] : poll a log file until COUNT (1) matching lines
	local f=$1 re=$2 t=$3 want=${4:-1} i c
	for i in $(seq $((t*10))); do
		c=$(grep -cE "$re" "$f" 2>/dev/null)
		[ "${c:-0}" -ge "$want" ] && return 0
		sleep 0.1
	done
	return 1
}

CAP_PID=
cap_start() { # cap_start NAME : tcpdump on A's veth end
	ip netns exec "$NSA" tcpdump -i "$VA" -n -U -s 0 -w "$OUT/$1.pcap" >"$OUT/logs/$1-tcpdump.log" 2>&1 &
	CAP_PID=$!; PIDS+=("$CAP_PID")
	wait_for "$OUT/logs/$1-tcpdump.log" 'listening on' 5 || log "warn: tcpdump slow to start"
}
cap_stop() { sleep 0.3; stop_pid "$CAP_PID" INT; }

report() { # report NAME : rtp,streams and SIP ladder to text files
	local s=$1
	tshark -r "$OUT/$s.pcap" -o rtp.heuristic_rtp:TRUE -q -z rtp,streams 2>/dev/null > "$OUT/$s.streams.txt"
	tshark -r "$OUT/$s.pcap" -Y sip 2>/dev/null > "$OUT/$s.sip.txt"
	sed 's/^/    /' "$OUT/$s.streams.txt" >> "$SUMMARY"
	sed 's/^/    /' "$OUT/$s.sip.txt" >> "$SUMMARY"
}
n_streams() { # number of RTP streams with >= $2 packets in NAME's pcap
	# columns: start end src sport dst dport ssrc payload.. pkts lost (lost%) ...
	awk -v min="$2" '$1 ~ /^[0-9.]+$/ { for (i = 8; i <= NF; i++) if ($i ~ /^\(.*%\)$/) { if ($(i-2)+0 >= min) n++; break } }
		END {print n+0}' "$OUT/$1.streams.txt"
}
has_sip() { grep -qE "$2" "$OUT/$1.sip.txt"; }

# ---- baresip
# bs_conf DIR IP ACCOUNT-LINE [RTCP_MUX(no|yes)]
bs_conf() {
	mkdir -p "$1"
	cat > "$1/config" <<EOF
module_path		/usr/lib/baresip/modules
poll_method		epoll
sip_listen		$2:5060
call_local_timeout	120
call_max_calls		4
audio_player		aubridge,nullsink
audio_source		aufile,$WAV
audio_alert		aubridge,nullalert
ausrc_srate		8000
auplay_srate		8000
ausrc_channels		1
auplay_channels		1
rtp_tos			184
rtp_ports		10000-10001
rtcp_mux		${4:-no}
jitter_buffer_delay	5-10
rtp_stats		yes
statmode_default	off
module			cons.so
module			g711.so
module			opus.so
module			aufile.so
module			aubridge.so
module_tmp		account.so
module_app		menu.so
cons_listen		127.0.0.1:5555
opus_bitrate		28000
EOF
	printf '%s\n' "$3" > "$1/accounts"
	: > "$1/contacts"
}
declare -A BS_PID BS_LOG
bs_start() { # bs_start TAG NS DIR
	BS_LOG[$1]=$OUT/logs/$CUR-$1-baresip.log
	HOME=$3 ip netns exec "$2" timeout 60 baresip -f "$3" </dev/null >"${BS_LOG[$1]}" 2>&1 &
	BS_PID[$1]=$!; PIDS+=("$!")
	wait_for "${BS_LOG[$1]}" 'baresip is ready' 5 || log "warn: baresip $1 not ready"
}
# bs_cmd NS CMD [WAIT_S]: send a command line to baresip's cons UDP socket, print the reply
bs_cmd() {
	ip netns exec "$1" bash -c 'exec 3<>/dev/udp/127.0.0.1/5555; printf "%s\n" "$1" >&3; timeout "$2" cat <&3' _ "$2" "${3:-0.3}" \
		| tr -d '\r' | sed -E 's#^(/[^/]*)+##'
}
bs_stop() { # bs_stop TAG NS
	bs_cmd "$2" /quit 0.2 >/dev/null
	stop_pid "${BS_PID[$1]}"
}

# ---- linphonec
# lp_conf DIR USER IP [RCVR_RTT_MODE] [BIND(1|0)]
# BIND=0 leaves out [rtp] bind_address: with no default route in the namespace liblinphone
# then cannot find its own address and puts c=IN IP4 127.0.0.1 in its SDP (used by s6c).
# RCVR_RTT_MODE (none|sender|all): with 'none' both ends send XR Statistics Summary (BT 6)
# and VoIP Metrics (BT 7); with 'sender'/'all' in the *peer's* SDP, liblinphone 5.1.65
# sends only Receiver Reference Time (BT 4) and never DLRR (BT 5). See NOTES.md.
lp_conf() {
	mkdir -p "$1/.local/share/linphone"          # liblinphone refuses to start SIP without it
	{
	cat <<EOF
[sip]
sip_port=5060
sip_tcp_port=0
sip_tls_port=0
use_ipv6=0
contact=sip:$2@$3
guess_hostname=0
inc_timeout=30
media_encryption=none
user_agent=Linphonec/5.1.65
[net]
mtu=1300
firewall_policy=0
[rtp]
$( [ "${5:-1}" = 1 ] && echo "bind_address=$3" )
audio_rtp_port=10000
audio_jitt_comp=60
nortp_timeout=30
rtcp_mux=0
rtcp_xr_enabled=1
rtcp_xr_rcvr_rtt_mode=${4:-none}
rtcp_xr_rcvr_rtt_max_size=10000
rtcp_xr_stat_summary_enabled=1
rtcp_xr_voip_metrics_enabled=1
[sound]
echocancellation=0
[video]
display=0
capture=0
automatically_initiate=0
automatically_accept=0
EOF
	local i=0 c
	for c in PCMU/8000/1/1 PCMA/8000/1/1 opus/48000/2/0 speex/16000/1/0 speex/8000/1/0 speex/32000/1/0 \
	         GSM/8000/1/0 G722/8000/1/0 G729/8000/1/0 G726-16/8000/1/0 G726-24/8000/1/0 G726-32/8000/1/0 \
	         G726-40/8000/1/0 AAL2-G726-16/8000/1/0 AAL2-G726-24/8000/1/0 AAL2-G726-32/8000/1/0 \
	         AAL2-G726-40/8000/1/0 L16/44100/2/0 L16/44100/1/0; do
		IFS=/ read -r m r ch en <<<"$c"
		printf '[audio_codec_%d]\nmime=%s\nrate=%s\nchannels=%s\nenabled=%s\n' $i "$m" "$r" "$ch" "$en"
		i=$((i+1))
	done
	} > "$1/linphonerc"
}
declare -A LP_PID LP_OUT LP_FD
lp_start() { # lp_start TAG NS DIR FD [extra args]  (FD: 7 or 8, a FIFO feeding its stdin)
	local tag=$1 ns=$2 dir=$3 fd=$4; shift 4
	mkfifo "$dir/stdin"
	eval "exec $fd<>\"$dir/stdin\""
	LP_OUT[$tag]=$OUT/logs/$CUR-$tag-linphonec.out
	HOME=$dir ip netns exec "$ns" timeout 60 linphonec -c "$dir/linphonerc" -d 6 -l "$OUT/logs/$CUR-$tag-linphonec.debug.log" "$@" \
		<"$dir/stdin" >"${LP_OUT[$tag]}" 2>&1 &
	LP_PID[$tag]=$!; LP_FD[$tag]=$fd; PIDS+=("$!")
	wait_for "${LP_OUT[$tag]}" 'linphonec>' 5 || log "warn: linphonec $tag no prompt"
	lp_cmd "$tag" "soundcard use files"
	lp_cmd "$tag" "play $WAV"
}
lp_cmd() { printf '%s\n' "$2" >&"${LP_FD[$1]}"; }
lp_stop() {
	lp_cmd "$1" quit
	local i; for i in $(seq 30); do kill -0 "${LP_PID[$1]}" 2>/dev/null || break; sleep 0.1; done
	stop_pid "${LP_PID[$1]}"
	eval "exec ${LP_FD[$1]}>&-"
}

# ---------------------------------------------------------------- scenario choice, probe
want() { [ -z "${SCENARIOS:-}" ] || [[ " $SCENARIOS " == *" $1 "* ]]; }
PROBE_PID=
if [ -n "${PROBE_CMD:-}" ]; then
	# Word splitting of PROBE_CMD is intended: it is a command line.
	# shellcheck disable=SC2086
	ip netns exec "$NSA" $PROBE_CMD --interface "$VA" >"$OUT/logs/probe.out" 2>"$OUT/logs/probe.err" &
	PROBE_PID=$!; PIDS+=("$PROBE_PID")
	wait_for "$OUT/logs/probe.err" 'capturing on' 20 || { log "probe did not start capturing"; exit 2; }
	log "probe capturing on $VA (pid $PROBE_PID)"
fi

# ================================================================= scenarios
MEDIA=${MEDIA_SECONDS:-6}

# ---- s1: baresip -> baresip PCMU
if want s1; then
CUR=s1; log "== s1 baresip -> baresip PCMU, ${MEDIA}s"
bs_conf "$WORK/s1A" $IPA "<sip:alice@$IPA>;regint=0;answermode=manual;audio_codecs=pcmu"
bs_conf "$WORK/s1B" $IPB "<sip:bob@$IPB>;regint=0;answermode=auto;audio_codecs=pcmu,pcma"
cap_start s1
bs_start B "$NSB" "$WORK/s1B"; bs_start A "$NSA" "$WORK/s1A"
bs_cmd "$NSA" "/dial sip:bob@$IPB" >/dev/null
wait_for "${BS_LOG[A]}" 'Call established' 5; rc=$?
sleep "$MEDIA"
ip netns exec "$NSA" ss -uanp > "$OUT/logs/s1-A-sockets.txt" 2>&1
ip netns exec "$NSB" ss -uanp > "$OUT/logs/s1-B-sockets.txt" 2>&1
bs_cmd "$NSA" /callstat 0.5 > "$OUT/logs/s1-A-callstat.txt"       # SDP/codec view
bs_cmd "$NSA" /audio_debug 0.5 > "$OUT/logs/s1-A-audio_debug.txt"  # RTP/RTCP counters, jitter, lost
bs_cmd "$NSA" /hangup >/dev/null
wait_for "${BS_LOG[B]}" 'terminated' 3
sleep 0.5; cap_stop
bs_stop A "$NSA"; bs_stop B "$NSB"
report s1
check s1.established $rc "caller saw 'Call established'"
n=$(n_streams s1 200); [ "$n" -ge 2 ]; check s1.rtp $? "RTP streams with >=200 pkts: $n (want 2)"
has_sip s1 'BYE' && has_sip s1 '200 OK \(BYE\)'; check s1.bye $? "BYE + 200 OK"
fi

# ---- s1m: as s1 but rtcp_mux yes on both ends (RTCP shares the RTP port)
if want s1m; then
CUR=s1m; log "== s1m baresip -> baresip PCMU with rtcp-mux, 5s"
bs_conf "$WORK/s1mA" $IPA "<sip:alice@$IPA>;regint=0;answermode=manual;audio_codecs=pcmu" yes
bs_conf "$WORK/s1mB" $IPB "<sip:bob@$IPB>;regint=0;answermode=auto;audio_codecs=pcmu,pcma" yes
cap_start s1m
bs_start B "$NSB" "$WORK/s1mB"; bs_start A "$NSA" "$WORK/s1mA"
bs_cmd "$NSA" "/dial sip:bob@$IPB" >/dev/null
wait_for "${BS_LOG[A]}" 'Call established' 5; rc=$?
sleep 5.5                                              # baresip's first SR comes at ~5 s
bs_cmd "$NSA" /hangup >/dev/null
wait_for "${BS_LOG[B]}" 'terminated' 3
sleep 0.5; cap_stop
bs_stop A "$NSA"; bs_stop B "$NSB"
report s1m
check s1m.established $rc "caller saw 'Call established'"
n=$(n_streams s1m 200); [ "$n" -ge 2 ]; check s1m.rtp $? "RTP streams with >=200 pkts: $n"
nm=$(tshark -r "$OUT/s1m.pcap" -Y 'rtcp && udp.port==10000 && !icmp' 2>/dev/null | wc -l)
[ "$nm" -ge 2 ]; check s1m.mux $? "RTCP packets on the RTP port 10000: $nm"
fi

# ---- s2: two calls back to back, same processes, same RTP port range (one pair)
if want s2; then
CUR=s2; log "== s2 back-to-back baresip calls on the same ports"
bs_conf "$WORK/s2A" $IPA "<sip:alice@$IPA>;regint=0;answermode=manual;audio_codecs=pcmu"
bs_conf "$WORK/s2B" $IPB "<sip:bob@$IPB>;regint=0;answermode=auto;audio_codecs=pcmu,pcma"
cap_start s2
bs_start B "$NSB" "$WORK/s2B"; bs_start A "$NSA" "$WORK/s2A"
for k in 1 2; do
	bs_cmd "$NSA" "/dial sip:bob@$IPB" >/dev/null
	wait_for "${BS_LOG[A]}" "Call established" 5 $k || log "warn: s2 call $k not established"
	sleep 4
	bs_cmd "$NSA" /hangup >/dev/null
	wait_for "${BS_LOG[B]}" 'terminated' 3 $k
	[ $k = 1 ] && sleep 1
done
sleep 0.5; cap_stop
bs_stop A "$NSA"; bs_stop B "$NSB"
report s2
n=$(n_streams s2 100); [ "$n" -ge 4 ]; check s2.rtp $? "RTP streams with >=100 pkts: $n (want 4: 2 per call)"
ncalls=$(tshark -r "$OUT/s2.pcap" -Y 'sip.Method==INVITE' -T fields -e sip.Call-ID 2>/dev/null | sort -u | wc -l)
[ "$ncalls" = 2 ]; check s2.calls $? "distinct INVITE Call-IDs: $ncalls"
ports=$(tshark -r "$OUT/s2.pcap" -o rtp.heuristic_rtp:TRUE -Y 'rtp && !icmp' -T fields -e ip.src -e udp.srcport -e ip.dst -e udp.dstport 2>/dev/null | sort -u | tr '\t' ' ' | paste -sd, -)
[ "$(awk -F, '{print NF}' <<<"$ports")" = 2 ]; check s2.sameports $? "distinct RTP 4-tuples over both calls: $ports"
ssrcs=$(awk '$1 ~ /^[0-9.]+$/ && NF>=10 {print $7}' "$OUT/s2.streams.txt" | sort -u | wc -l)
log "info s2: distinct SSRCs over both calls: $ssrcs"
fi

# ---- s3: opus
if want s3; then
CUR=s3; log "== s3 baresip -> baresip opus"
bs_conf "$WORK/s3A" $IPA "<sip:alice@$IPA>;regint=0;answermode=manual;audio_codecs=opus/48000/2"
bs_conf "$WORK/s3B" $IPB "<sip:bob@$IPB>;regint=0;answermode=auto;audio_codecs=opus/48000/2,pcmu"
cap_start s3
bs_start B "$NSB" "$WORK/s3B"; bs_start A "$NSA" "$WORK/s3A"
bs_cmd "$NSA" "/dial sip:bob@$IPB" >/dev/null
wait_for "${BS_LOG[A]}" 'Call established' 5; rc=$?
sleep "$MEDIA"
bs_cmd "$NSA" /hangup >/dev/null
wait_for "${BS_LOG[B]}" 'terminated' 3
sleep 0.5; cap_stop
bs_stop A "$NSA"; bs_stop B "$NSB"
report s3
check s3.established $rc "caller saw 'Call established'"
n=$(n_streams s3 200); [ "$n" -ge 2 ]; check s3.rtp $? "RTP streams with >=200 pkts: $n"
grep -q 'opus' "${BS_LOG[A]}"; check s3.opus $? "caller log names the opus codec"
fi

# ---- s4: CANCEL while ringing
if want s4; then
CUR=s4; log "== s4 CANCEL while the callee rings"
bs_conf "$WORK/s4A" $IPA "<sip:alice@$IPA>;regint=0;answermode=manual;audio_codecs=pcmu"
bs_conf "$WORK/s4B" $IPB "<sip:bob@$IPB>;regint=0;answermode=manual;audio_codecs=pcmu,pcma"
cap_start s4
bs_start B "$NSB" "$WORK/s4B"; bs_start A "$NSA" "$WORK/s4A"
bs_cmd "$NSA" "/dial sip:bob@$IPB" >/dev/null
wait_for "${BS_LOG[A]}" '180 Ringing' 5
sleep 2
bs_cmd "$NSA" /hangup >/dev/null
wait_for "${BS_LOG[B]}" 'terminated|closed' 3
sleep 0.5; cap_stop
bs_stop A "$NSA"; bs_stop B "$NSB"
report s4
has_sip s4 'CANCEL' && has_sip s4 '487'; check s4.cancel $? "CANCEL + 487 seen"
n=$(n_streams s4 1); log "info s4: RTP streams: $n (0 expected: no early media)"
fi

# ---- s5: hold / resume
if want s5; then
CUR=s5; log "== s5 hold/resume (caller /hold then /resume)"
bs_conf "$WORK/s5A" $IPA "<sip:alice@$IPA>;regint=0;answermode=manual;audio_codecs=pcmu"
bs_conf "$WORK/s5B" $IPB "<sip:bob@$IPB>;regint=0;answermode=auto;audio_codecs=pcmu,pcma"
cap_start s5
bs_start B "$NSB" "$WORK/s5B"; bs_start A "$NSA" "$WORK/s5A"
bs_cmd "$NSA" "/dial sip:bob@$IPB" >/dev/null
wait_for "${BS_LOG[A]}" 'Call established' 5; rc=$?
sleep 3
bs_cmd "$NSA" /hold > "$OUT/logs/s5-A-hold.txt"
sleep 3
bs_cmd "$NSA" /resume > "$OUT/logs/s5-A-resume.txt"
sleep 3
bs_cmd "$NSA" /hangup >/dev/null
wait_for "${BS_LOG[B]}" 'terminated' 3
sleep 0.5; cap_stop
bs_stop A "$NSA"; bs_stop B "$NSB"
report s5
check s5.established $rc "caller saw 'Call established'"
ninv=$(tshark -r "$OUT/s5.pcap" -Y 'sip.Method==INVITE' 2>/dev/null | wc -l)
[ "$ninv" -ge 3 ]; check s5.reinvite $? "INVITEs (initial + hold + resume): $ninv"
dirs=$(tshark -r "$OUT/s5.pcap" -Y sdp -T fields -e sdp.media_attr 2>/dev/null | awk '{ if (match($0, /sendrecv|sendonly|recvonly|inactive/)) print substr($0, RSTART, RLENGTH); else print "(none)" }' | paste -sd' ' -)
log "info s5: SDP directions in order: $dirs"
tshark -r "$OUT/s5.pcap" -o rtp.heuristic_rtp:TRUE -Y 'rtp && !icmp' -T fields -e frame.time_relative -e ip.src -e rtp.ssrc 2>/dev/null \
	| awk '{k=$2" "$3; if(!(k in f)){f[k]=$1; o[++n]=k} l[k]=$1; c[k]++} END {for(i=1;i<=n;i++) printf "    %s first=%.2f last=%.2f pkts=%d\n", o[i], f[o[i]], l[o[i]], c[o[i]]}' \
	> "$OUT/logs/s5-rtp-by-ssrc.txt"
log "info s5: RTP per (src, SSRC):"; tee -a "$SUMMARY" < "$OUT/logs/s5-rtp-by-ssrc.txt"
[ "$(wc -l < "$OUT/logs/s5-rtp-by-ssrc.txt")" = 2 ]; check s5.ssrc $? "one SSRC per direction across hold/resume"
gaps=$(tshark -r "$OUT/s5.pcap" -o rtp.heuristic_rtp:TRUE -Y 'rtp && !icmp' -T fields -e frame.time_relative -e ip.src 2>/dev/null \
	| awk '{ if (($2 in p) && $1 - p[$2] > 0.5) printf "%s %.2f-%.2f ", $2, p[$2], $1; p[$2] = $1 }')
log "info s5: RTP silences > 0.5 s (src from-to): ${gaps:-none}"
fi

# ---- s5b: linphonec pause/resume towards baresip (asymmetric hold: linphonec keeps sending)
if want s5b; then
CUR=s5b; log "== s5b hold/resume from linphonec (pause/resume) towards baresip"
lp_conf "$WORK/s5bA" carol $IPA
bs_conf "$WORK/s5bB" $IPB "<sip:bob@$IPB>;regint=0;answermode=auto;audio_codecs=pcmu,pcma"
cap_start s5b
bs_start B "$NSB" "$WORK/s5bB"
lp_start A "$NSA" "$WORK/s5bA" 7
lp_cmd A "call sip:bob@$IPB"
wait_for "${LP_OUT[A]}" 'connected\.' 5; rc=$?
sleep 3
lp_cmd A pause
wait_for "${LP_OUT[A]}" 'is now paused' 3
sleep 3
lp_cmd A resume
wait_for "${LP_OUT[A]}" 'Media streams established' 3 2
sleep 3
lp_cmd A terminate
wait_for "${BS_LOG[B]}" 'terminated' 3
sleep 0.5; cap_stop
lp_stop A; bs_stop B "$NSB"
report s5b
check s5b.established $rc "linphonec saw 'connected.'"
ninv=$(tshark -r "$OUT/s5b.pcap" -Y 'sip.Method==INVITE' 2>/dev/null | wc -l)
[ "$ninv" -ge 3 ]; check s5b.reinvite $? "INVITEs (initial + pause + resume): $ninv"
dirs=$(tshark -r "$OUT/s5b.pcap" -Y sdp -T fields -e sdp.media_attr 2>/dev/null | awk '{ if (match($0, /sendrecv|sendonly|recvonly|inactive/)) print substr($0, RSTART, RLENGTH); else print "(none)" }' | paste -sd' ' -)
log "info s5b: SDP directions in order: $dirs"
gaps=$(tshark -r "$OUT/s5b.pcap" -o rtp.heuristic_rtp:TRUE -Y 'rtp && !icmp' -T fields -e frame.time_relative -e ip.src 2>/dev/null \
	| awk '{ if (($2 in p) && $1 - p[$2] > 0.5) printf "%s %.2f-%.2f ", $2, p[$2], $1; p[$2] = $1 }')
log "info s5b: RTP silences > 0.5 s (src from-to): ${gaps:-none}"
n=$(awk '$1 ~ /^[0-9.]+$/' "$OUT/s5b.streams.txt" | wc -l); [ "$n" = 2 ]; check s5b.ssrc $? "RTP streams (one SSRC per direction): $n"
fi

# ---- s6a: linphonec -> baresip
if want s6a; then
CUR=s6a; log "== s6a linphonec -> baresip PCMU"
lp_conf "$WORK/s6aA" carol $IPA
bs_conf "$WORK/s6aB" $IPB "<sip:bob@$IPB>;regint=0;answermode=auto;audio_codecs=pcmu,pcma"
cap_start s6a
bs_start B "$NSB" "$WORK/s6aB"
lp_start A "$NSA" "$WORK/s6aA" 7
lp_cmd A "call sip:bob@$IPB"
wait_for "${LP_OUT[A]}" 'connected\.' 5; rc=$?
sleep "$MEDIA"
lp_cmd A terminate
wait_for "${BS_LOG[B]}" 'terminated' 3
sleep 0.5; cap_stop
lp_stop A; bs_stop B "$NSB"
report s6a
check s6a.established $rc "linphonec saw 'connected.'"
n=$(n_streams s6a 200); [ "$n" -ge 2 ]; check s6a.rtp $? "RTP streams with >=200 pkts: $n"
fi

# ---- s6c: linphonec -> baresip where linphonec's SDP lies (c=127.0.0.1): one-way audio
if want s6c; then
CUR=s6c; log "== s6c linphonec (no bind_address, SDP c=127.0.0.1) -> baresip: one-way audio"
lp_conf "$WORK/s6cA" carol $IPA none 0
bs_conf "$WORK/s6cB" $IPB "<sip:bob@$IPB>;regint=0;answermode=auto;audio_codecs=pcmu,pcma"
cap_start s6c
bs_start B "$NSB" "$WORK/s6cB"
lp_start A "$NSA" "$WORK/s6cA" 7
lp_cmd A "call sip:bob@$IPB"
wait_for "${LP_OUT[A]}" 'connected\.' 5; rc=$?
sleep 4
lp_cmd A terminate
wait_for "${BS_LOG[B]}" 'terminated' 3
sleep 0.5; cap_stop
lp_stop A; bs_stop B "$NSB"
report s6c
check s6c.established $rc "linphonec saw 'connected.'"
c=$(tshark -r "$OUT/s6c.pcap" -Y 'sdp && ip.src==10.77.0.1' -T fields -e sdp.connection_info 2>/dev/null | head -1)
log "info s6c: linphonec SDP connection line: $c"
n=$(n_streams s6c 100); [ "$n" = 1 ]; check s6c.oneway $? "RTP streams on the wire: $n (want 1: baresip sends to 127.0.0.1 inside its own namespace)"
fi

# ---- s6b: linphonec -> linphonec with RTCP-XR
if want s6b; then
CUR=s6b; log "== s6b linphonec -> linphonec PCMU + RTCP-XR"
lp_conf "$WORK/s6bA" carol $IPA "${XR_RTT_A:-none}"
lp_conf "$WORK/s6bB" dave $IPB "${XR_RTT_B:-none}"
cap_start s6b
lp_start B "$NSB" "$WORK/s6bB" 8 -a
lp_start A "$NSA" "$WORK/s6bA" 7
lp_cmd A "call sip:dave@$IPB"
wait_for "${LP_OUT[A]}" 'connected\.' 5; rc=$?
sleep $((MEDIA + 2))                                   # first RTCP from linphone comes after ~2-5 s
lp_cmd A terminate
wait_for "${LP_OUT[B]}" 'ended' 3
sleep 0.5; cap_stop
lp_stop A; lp_stop B
report s6b
check s6b.established $rc "linphonec saw 'connected.'"
n=$(n_streams s6b 200); [ "$n" -ge 2 ]; check s6b.rtp $? "RTP streams with >=200 pkts: $n"
tshark -r "$OUT/s6b.pcap" -Y 'rtcp.xr.bt && !icmp' -T fields -e frame.time_relative -e ip.src -e rtcp.pt -e rtcp.xr.bt 2>/dev/null > "$OUT/s6b.xr.txt"
bts=$(cut -f4 "$OUT/s6b.xr.txt" | tr ',' '\n' | sort -u | paste -sd, -)
[ -s "$OUT/s6b.xr.txt" ]; check s6b.xr $? "RTCP XR packets: $(wc -l < "$OUT/s6b.xr.txt"), block types seen: ${bts:-none}"
fi

# ================================================================= done
if [ -n "$PROBE_PID" ]; then
	kill -TERM "$PROBE_PID" 2>/dev/null
	for _ in $(seq $(( ${PROBE_STOP_S:-30} * 10 ))); do kill -0 "$PROBE_PID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$PROBE_PID" 2>/dev/null && { log "FAIL probe did not exit after SIGTERM"; FAILS=$((FAILS+1)); }
	wait "$PROBE_PID"; log "probe exited with status $?"
fi
log "== total ${FAILS} failed check(s), runtime $(( $(date +%s) - T0 ))s, output in $OUT"
[ "$FAILS" = 0 ]
