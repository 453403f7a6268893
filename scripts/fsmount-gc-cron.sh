#!/usr/bin/env bash
# fsmount-gc-cron.sh: one featurefs garbage collection run, for cron.
#
# Runs `fsmount gc` on a cache root, mounted or not, and logs its output to
# syslog (tag fsmount-gc) when logger(1) exists, else to stderr, which cron
# mails. Failures always go to stderr too, so cron mails them either way.
#
# Sample crontab line (daily at 03:17, as the user who owns the cache root):
#
#   17 3 * * *  FEATURE_STORE_PATH=/data/feature_cache /usr/local/bin/fsmount-gc-cron.sh
#
# Environment (fsmount reads the first three itself):
#   FEATURE_STORE_PATH                cache root (default ~/.feature_cache)
#   FEATURE_STORE_GC_RETENTION_WEEKS  delete entries not read for this many weeks (default 4)
#   FEATURE_STORE_GC_DRY_RUN          true: report what would be deleted, delete nothing
#                                     (also accepts yes/no/on/off)
#   FSMOUNT                           the fsmount binary (default: fsmount on PATH,
#                                     then /usr/local/bin/fsmount)
#   FSMOUNT_GC_ARGS                   extra flags, for example "--max-size 500G"
#   FSMOUNT_GC_REPORT                 also write the JSON report to this file
#                                     (the last report is always in <cache root>/gc-report.json)
#
# Exit status is fsmount's: 0 clean, 1 integrity issues or errors (see the
# report), 2 usage error. Runs on one cache root never overlap: a second run
# waits for the first.
set -euo pipefail

readonly TAG=fsmount-gc

have_logger=false
command -v logger >/dev/null 2>&1 && have_logger=true

# log PRIORITY MESSAGE: syslog when available; stderr when not, or on errors.
log() {
	if $have_logger; then
		logger -t "$TAG" -p "user.$1" -- "$2" || true
	fi
	if ! $have_logger || [[ $1 == err ]]; then
		printf '%s: %s\n' "$TAG" "$2" >&2
	fi
}

# cron runs with a minimal PATH.
fsmount=${FSMOUNT:-}
if [[ -z $fsmount ]]; then
	fsmount=$(command -v fsmount 2>/dev/null || true)
	[[ -n $fsmount ]] || fsmount=/usr/local/bin/fsmount
fi
if [[ ! -x $fsmount ]]; then
	log err "fsmount not found at $fsmount (set FSMOUNT)"
	exit 2
fi

# fsmount accepts Go booleans (true/false/1/0); be lenient with the usual words.
if [[ -n ${FEATURE_STORE_GC_DRY_RUN:-} ]]; then
	case ${FEATURE_STORE_GC_DRY_RUN,,} in
	yes | y | on) export FEATURE_STORE_GC_DRY_RUN=true ;;
	no | n | off) export FEATURE_STORE_GC_DRY_RUN=false ;;
	esac
else
	unset FEATURE_STORE_GC_DRY_RUN
fi
[[ -n ${FEATURE_STORE_GC_RETENTION_WEEKS:-} ]] || unset FEATURE_STORE_GC_RETENTION_WEEKS

args=(gc)
if [[ -n ${FSMOUNT_GC_ARGS:-} ]]; then
	read -r -a extra <<<"$FSMOUNT_GC_ARGS"
	args+=("${extra[@]}")
fi
[[ -z ${FSMOUNT_GC_REPORT:-} ]] || args+=(--output-json "$FSMOUNT_GC_REPORT")

log info "starting: $fsmount ${args[*]} (cache root ${FEATURE_STORE_PATH:-~/.feature_cache}, retention ${FEATURE_STORE_GC_RETENTION_WEEKS:-4} weeks, dry run ${FEATURE_STORE_GC_DRY_RUN:-false})"

# Every line fsmount prints (report and logs) goes to the log as it comes; a
# copy is kept so that a failure's output also reaches stderr (and cron mail).
out=$(mktemp "${TMPDIR:-/tmp}/fsmount-gc.XXXXXX")
trap 'rm -f "$out"' EXIT
set +e
"$fsmount" "${args[@]}" 2>&1 | tee "$out" | while IFS= read -r line; do log info "$line"; done
rc=${PIPESTATUS[0]}
set -e

case $rc in
0) log info "finished" ;;
*)
	if $have_logger; then
		tail -n 50 "$out" >&2
	fi
	if [[ $rc == 1 ]]; then
		log err "finished with integrity issues or errors (exit 1); the report is gc-report.json in the cache root"
	else
		log err "failed (exit $rc)"
	fi
	;;
esac
exit "$rc"
