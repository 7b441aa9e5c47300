#!/bin/sh
# registry-janitor's host script: everything that runs on the registry host.
#   inventory: every manifest revision and tag of the registry's storage, with push times, and the manifests.
#   collect:   garbage collection without --delete-untagged, then a restart that empties the registry's
#              in-memory blob cache; both run detached from the caller, so they finish even when it is killed.
#   recover:   brings the registry back after a collection that did not finish.
# Inputs are the RJ_* environment variables only (lambda/host/README.md); each is validated before any
# use. The last line on stdout is a one-line JSON summary; the collector's own output goes to a log file.
set -eu
umask 077
LC_ALL=C
export LC_ALL

started=$(date -u +%s)
action=
action_json=null
tmp=
summary_printed=false
archive_pid=
# Docker's Go templates are built from this, so the text never holds a double brace: SSM reads those as
# document parameter references.
brace='{'

elapsed() {
  echo $(($(date -u +%s) - started))
}

note() {
  printf 'registry-janitor: %s\n' "$1" >&2
}

# $1 as the inside of a JSON string: one line of printable ASCII, backslashes and quotes escaped.
json_escape() {
  { printf '%s' "$1" | tr -c '[:print:]' ' '; echo; } | sed 's/[\\"]/\\&/g'
}

# The first lines of file $1 as one line of at most 300 printable characters; nothing for an empty file.
first_lines() {
  [ -s "$1" ] || return 0
  { sed -n '1,5p' "$1" | tr -c '[:print:]' ' '; echo; } | tr -s ' ' | sed 's/^ //; s/ $//' | cut -c 1-300
}

# Reason $1, then what the failed command said (file $2, by default the last docker call's stderr).
with_error() {
  said=$(first_lines "${2:-$tmp/docker.err}")
  if [ -n "$said" ]; then printf '%s: %s' "$1" "$said"; else printf '%s' "$1"; fi
}

# --- input validation -----------------------------------------------------------------------------------
# The accepted forms are also in lambda/host/script.ts (HOST_PARAMETERS); a test keeps the two in step.

DESCRIBE_ACTION='inventory, collect or recover'
DESCRIBE_CONTAINER="a container name or id: a letter or digit, then up to 127 letters, digits, '_', '.' or '-'"
DESCRIBE_PATH="an absolute path of 2 to 256 characters from A-Z a-z 0-9 '.' '_' '/' '-', without '..'"
DESCRIBE_GC_MODE='online or stopped'
DESCRIBE_BOOLEAN='true or false'
DESCRIBE_PORT='a port number from 1 to 65535'
DESCRIBE_COUNT='a whole number from 0 to 99999, without leading zeros'
DESCRIBE_POLL='a whole number from 1 to 999, without leading zeros'

invalid() {
  printf '{"registryJanitor":1,"action":%s,"status":"failed","reason":"invalid %s: expected %s","variable":"%s","durationSeconds":%s}\n' \
    "$action_json" "$1" "$2" "$1" "$(elapsed)"
  exit 2
}

is_container() {
  case $1 in
  [a-zA-Z0-9]*) ;;
  *) return 1 ;;
  esac
  case $1 in
  *[!a-zA-Z0-9_.-]*) return 1 ;;
  esac
  [ "${#1}" -le 128 ]
}

is_path() {
  case $1 in
  /?*) ;;
  *) return 1 ;;
  esac
  case $1 in
  *[!A-Za-z0-9._/-]* | *..*) return 1 ;;
  esac
  [ "${#1}" -le 256 ]
}

# A decimal without leading zeros (a leading zero would be octal in shell arithmetic) of at most $2 digits.
is_number() {
  case $1 in
  0) return 0 ;;
  [1-9]*) ;;
  *) return 1 ;;
  esac
  case $1 in
  *[!0-9]*) return 1 ;;
  esac
  [ "${#1}" -le "$2" ]
}

action=${RJ_ACTION:-}
case $action in
inventory | collect | recover) action_json="\"$action\"" ;;
*) invalid RJ_ACTION "$DESCRIBE_ACTION" ;;
esac

container=${RJ_CONTAINER:-registry}
is_container "$container" || invalid RJ_CONTAINER "$DESCRIBE_CONTAINER"

binary=${RJ_REGISTRY_BINARY:-/bin/registry}
is_path "$binary" || invalid RJ_REGISTRY_BINARY "$DESCRIBE_PATH"

config=${RJ_REGISTRY_CONFIG:-}
[ -z "$config" ] || is_path "$config" || invalid RJ_REGISTRY_CONFIG "$DESCRIBE_PATH"

root=${RJ_STORAGE_ROOT:-/var/lib/registry}
is_path "$root" || invalid RJ_STORAGE_ROOT "$DESCRIBE_PATH"

gc_mode=${RJ_GC_MODE:-online}
case $gc_mode in
online | stopped) ;;
*) invalid RJ_GC_MODE "$DESCRIBE_GC_MODE" ;;
esac

restart=${RJ_RESTART:-true}
case $restart in
true | false) ;;
*) invalid RJ_RESTART "$DESCRIBE_BOOLEAN" ;;
esac

port=${RJ_REGISTRY_PORT:-5000}
if ! is_number "$port" 5 || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
  invalid RJ_REGISTRY_PORT "$DESCRIBE_PORT"
fi

upload_wait=${RJ_UPLOAD_WAIT_SECONDS:-300}
is_number "$upload_wait" 5 || invalid RJ_UPLOAD_WAIT_SECONDS "$DESCRIBE_COUNT"

upload_recent=${RJ_UPLOAD_RECENT_MINUTES:-60}
is_number "$upload_recent" 5 || invalid RJ_UPLOAD_RECENT_MINUTES "$DESCRIBE_COUNT"

poll=${RJ_POLL_SECONDS:-5}
if ! is_number "$poll" 3 || [ "$poll" -lt 1 ]; then
  invalid RJ_POLL_SECONDS "$DESCRIBE_POLL"
fi

ready_seconds=${RJ_READY_SECONDS:-120}
is_number "$ready_seconds" 5 || invalid RJ_READY_SECONDS "$DESCRIBE_COUNT"

lock_file=${RJ_LOCK_FILE:-/var/lock/registry-janitor.lock}
is_path "$lock_file" || invalid RJ_LOCK_FILE "$DESCRIBE_PATH"

log_dir=${RJ_LOG_DIR:-/var/log/registry-janitor}
is_path "$log_dir" || invalid RJ_LOG_DIR "$DESCRIBE_PATH"

repositories_dir=$root/docker/registry/v2/repositories
# The largest config the scan reads (MAX_CONFIG_BYTES in lambda/scan.ts).
MAX_CONFIG_BYTES=4194304
blobs_dir=$root/docker/registry/v2/blobs

# --- shared helpers -------------------------------------------------------------------------------------

# Runs a read-only command in the container, stdout to file $1, stderr to $tmp/docker.err. Files that vanish
# while it reads (pushes and deletes go on meanwhile) are not an error; anything else on stderr is.
container_read() {
  out=$1
  shift
  if docker exec "$container" "$@" >"$out" 2>"$tmp/docker.err"; then
    return 0
  fi
  if [ -s "$tmp/docker.err" ] && ! grep -v 'No such file or directory' "$tmp/docker.err" >/dev/null; then
    return 0
  fi
  return 1
}

on_exit() {
  rc=$?
  trap '' HUP INT TERM
  if [ "$action" = collect ]; then
    stop_waiting
  fi
  if [ "$action" != inventory ] && [ "$summary_printed" = false ]; then
    if [ "$rc" -ge 128 ]; then
      print_summary failed 'interrupted'
    else
      print_summary failed 'the script stopped unexpectedly'
    fi
    [ "$rc" -ne 0 ] || rc=1
  fi
  [ -z "$tmp" ] || rm -rf "$tmp"
  exit "$rc"
}

# --- inventory ------------------------------------------------------------------------------------------

# One walk of the repositories: relative paths keep the output independent of where the storage is mounted.
# The layer links and uploads in progress are skipped (a tag of that name is not: it is under _manifests).
# Each link's mtime comes from `stat`, a tag link's digest from `grep`, both in batches. `%y` carries the
# fraction of a second that `%Y` drops, in BusyBox's stat as in GNU's ("2024-02-03 04:05:06.123456789
# +0000"); `%.9Y` is GNU's only.
# shellcheck disable=SC2016
INVENTORY_FIND='[ -d "$1" ] || exit 0
cd "$1" || exit 1
exec find . \( -name _layers -o -name _uploads \) ! -path "*/_manifests/*" -prune \
  -o -type d -name _manifests -exec stat -c "%Y %y %n" {} + \
  -o -type f -path "*/_manifests/revisions/sha256/*/link" -exec stat -c "%Y %y %n" {} + \
  -o -type f -path "*/_manifests/tags/*/current/link" -exec stat -c "%Y %y %n" {} + -exec grep -H . {} +'

# Turns the find output into "<repository> D|V|T ..." lines, push times as epoch seconds with the fraction
# where there is one, checking every name against the registry's grammar; anything else, and a tag without a
# readable digest, is counted as ignored. Each revision's blob, as a path under blobs/sha256, goes to
# blobs_file.
# shellcheck disable=SC2016
INVENTORY_PARSE='
function valid_repository(r) {
  return length(r) <= 255 && r ~ /^[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(\/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$/
}
function valid_hex(h) { return length(h) == 64 && h !~ /[^a-f0-9]/ }
function valid_tag(t) { return length(t) <= 128 && t ~ /^[a-zA-Z0-9_][a-zA-Z0-9._-]*$/ }
function ends_with(s, suffix) {
  return length(s) >= length(suffix) && substr(s, length(s) - length(suffix) + 1) == suffix
}
/^[0-9]+ / && index($0, " ./") > 0 {
  i = index($0, " ./")
  path = substr($0, i + 3)
  mtime = $1
  # Whole seconds, unless the stat gave a fraction of a second in %y.
  if (match(substr($0, 1, i), /:[0-9][0-9]\.[0-9]+/)) mtime = mtime "." substr($0, RSTART + 4, RLENGTH - 4)
  if ((i = index(path, "/_manifests/revisions/sha256/")) > 0) {
    repository = substr(path, 1, i - 1)
    hex = substr(path, i + 29)
    if (ends_with(hex, "/link")) hex = substr(hex, 1, length(hex) - 5); else hex = ""
    if (valid_repository(repository) && valid_hex(hex)) {
      print repository " V " hex " " mtime
      print substr(hex, 1, 2) "/" hex "/data" > blobs_file
    } else ignored++
  } else if ((i = index(path, "/_manifests/tags/")) > 0) {
    repository = substr(path, 1, i - 1)
    tag = substr(path, i + 17)
    if (ends_with(tag, "/current/link")) tag = substr(tag, 1, length(tag) - 13); else tag = ""
    if (valid_repository(repository) && valid_tag(tag)) {
      tag_time[path] = mtime
      tag_entry[path] = repository " T " tag
    } else ignored++
  } else if (ends_with(path, "/_manifests")) {
    repository = substr(path, 1, length(path) - 11)
    if (valid_repository(repository)) print repository " D"
    else ignored++
  } else ignored++
  next
}
/^\.\// {
  i = index($0, ":")
  path = substr($0, 3, i - 3)
  content = substr($0, i + 1)
  if (i > 0 && substr(content, 1, 7) == "sha256:" && valid_hex(substr(content, 8))) tag_hex[path] = substr(content, 8)
  next
}
{ ignored++ }
END {
  for (path in tag_time) {
    if (path in tag_hex) print tag_entry[path] " " tag_hex[path] " " tag_time[path]
    else ignored++
  }
  printf "%d\n", ignored > ignored_file
}'

# Picks, in each manifest file it reads, the config its manifest names: the first "digest" after a "config"
# key whose value is an object, on that line or within the 20 lines after it. Only a well-formed digest
# becomes a path under blobs/sha256; a wrong pick costs one blob of at most a config's size, which the scan
# checks against its digest and uses only as the config the manifest names.
# shellcheck disable=SC2016
INVENTORY_CONFIGS='
function found(s,   m, k, hex) {
  if (!match(s, /"digest"[ \t\r]*:[ \t\r]*"sha256:[a-f0-9]+"/)) return 0
  m = substr(s, RSTART, RLENGTH)
  k = index(m, "sha256:")
  hex = substr(m, k + 7, length(m) - k - 7)
  if (length(hex) == 64) print substr(hex, 1, 2) "/" hex "/data"
  return 1
}
FNR == 1 { seek = 0 }
seek > 0 {
  if (found($0) || ++seek > 20) seek = 0
  next
}
{
  s = $0
  while ((i = index(s, "\"config\"")) > 0) {
    s = substr(s, i + 8)
    if (match(s, /^[ \t\r]*:[ \t\r]*[{]/)) {
      if (!found(substr(s, RLENGTH + 1))) seek = 1
      break
    }
  }
}'

# Archives every manifest revision's blob of the repositories under $1 (a path under the blobs folder $2 for
# each link whose digest is well-formed) and the configs they name ($3 picks them) of at most $4 bytes, so
# that the scan reads build times from storage too. It walks the storage on its own, beside the listing: a
# revision pushed between the two walks is in one only, and the scan sees it next time. A blob that vanished
# meanwhile is left out: it is nothing the registry could serve.
# shellcheck disable=SC2016
INVENTORY_ARCHIVE='cd "$1" 2>/dev/null || exit 0
manifests=$(find . \( -name _layers -o -name _uploads \) ! -path "*/_manifests/*" -prune \
  -o -type f -path "*/_manifests/revisions/sha256/*/link" -print | awk -F / "
  NF >= 6 && \$(NF - 2) == \"sha256\" && \$(NF - 3) == \"revisions\" && length(\$(NF - 1)) == 64 &&
    \$(NF - 1) !~ /[^a-f0-9]/ { print substr(\$(NF - 1), 1, 2) \"/\" \$(NF - 1) \"/data\" }" | sort -u)
[ -n "$manifests" ] || exit 0
cd "$2" || exit 1
configs=$(printf "%s\n" "$manifests" | xargs awk "$3" 2>/dev/null | sort -u |
  xargs -r stat -c "%s %n" 2>/dev/null | awk -v max="$4" "\$1 <= max { print \$2 }")
{
  printf "%s\n" "$manifests"
  [ -z "$configs" ] || printf "%s\n" "$configs"
} | sort -u | xargs tar -cf -'

# shellcheck disable=SC2016
INVENTORY_PRINT='
$1 != current { current = $1; print "R " current; repositories++ }
$2 == "V" { print "V " $3 " " $4; revisions++ }
$2 == "T" { print "T " $3 " " $4 " " $5; tags++ }
END { printf "%d %d %d\n", repositories, revisions, tags > counts_file }'

inventory_failed() {
  [ -z "$archive_pid" ] || kill "$archive_pid" 2>/dev/null || true
  note "inventory failed: $1"
  printf '{"registryJanitor":1,"action":"inventory","status":"failed","reason":"%s","durationSeconds":%s}\n' \
    "$(json_escape "$1")" "$(elapsed)"
  exit 1
}

# The manifest blobs and their configs as a tar archive, gzip-compressed, in $tmp/manifests.gz; what the
# container said in $tmp/archive.err.
archive_manifests() {
  {
    archive_rc=0
    docker exec "$container" sh -c "$INVENTORY_ARCHIVE" sh "$repositories_dir" "$blobs_dir/sha256" \
      "$INVENTORY_CONFIGS" "$MAX_CONFIG_BYTES" 2>"$tmp/archive.err" || archive_rc=1
    echo "$archive_rc" >"$tmp/archive.rc"
  } | gzip -c >"$tmp/manifests.gz" || return 1
  read -r archive_rc <"$tmp/archive.rc"
  [ "$archive_rc" -eq 0 ] && return 0
  # tar goes on past a file that vanished, names it, and says so again at the end.
  [ -s "$tmp/archive.err" ] &&
    ! grep -v -e 'No such file or directory' -e 'previous errors' "$tmp/archive.err" >/dev/null
}

run_inventory() {
  for tool in docker gzip base64; do
    command -v "$tool" >/dev/null 2>&1 || inventory_failed "$tool is not installed on this host"
  done
  # The two reads of the container run side by side: each waits mostly on the other side of docker exec.
  archive_manifests &
  archive_pid=$!
  container_read "$tmp/found" sh -c "$INVENTORY_FIND" sh "$repositories_dir" ||
    inventory_failed "$(with_error 'could not read the registry storage in the container')"
  : >"$tmp/blobs"
  awk -v ignored_file="$tmp/ignored" -v blobs_file="$tmp/blobs" "$INVENTORY_PARSE" "$tmp/found" >"$tmp/entries"
  manifests=$(sort -u "$tmp/blobs" | awk 'END { print NR }')
  archived=true
  wait "$archive_pid" || archived=false
  archive_pid=
  [ "$archived" = true ] ||
    inventory_failed "$(with_error 'could not read the manifests in the container' "$tmp/archive.err")"
  : >"$tmp/manifests.b64"
  if [ "$manifests" -gt 0 ]; then
    base64 "$tmp/manifests.gz" >"$tmp/manifests.b64"
  fi
  sort -k1,1 "$tmp/entries" >"$tmp/sorted"
  awk -v counts_file="$tmp/counts" "$INVENTORY_PRINT" "$tmp/sorted"
  sed 's/^/M /' "$tmp/manifests.b64"
  read -r repositories revisions tags <"$tmp/counts"
  read -r ignored <"$tmp/ignored"
  archive_lines=$(awk 'END { print NR }' "$tmp/manifests.b64")
  printf '{"registryJanitor":1,"action":"inventory","status":"done","repositories":%d,"revisions":%d,"tags":%d,"manifests":%d,"archiveLines":%d,"ignored":%d,"durationSeconds":%s}\n' \
    "$repositories" "$revisions" "$tags" "$manifests" "$archive_lines" "$ignored" "$(elapsed)"
}

# --- collect and recover --------------------------------------------------------------------------------

RESTART_WARNING='registry not restarted: until it restarts it may report collected blobs as present, and re-pushes of those layers will be silently broken'
NO_MARK_SUMMARY='the collector exited 0 without its mark summary (N blobs marked, M blobs and K manifests eligible for deletion)'
REDIS_WARNING='the registry caches blob descriptors in Redis, which a restart does not clear: flush that Redis database after every garbage collection, or re-pushes of collected layers will be silently broken'
EMPTY_REGISTRY='Path not found: /docker/registry/v2/(repositories|blobs)$'

# Present from the start of a collection until the registry is back after it: a collection that was killed with
# its watchdog leaves it behind, and `recover` (or the next collection) then brings the registry back.
marker_file=${log_dir%/}/collection-in-progress

version=
log_file=
gc_exit=null
collected=false
gc_container=
blobs_marked=null
blobs_deleted=null
manifests_deleted=null
bytes_before=null
bytes_after=null
bytes_freed=null
disk_before=null
disk_after=null
restarted=false
redis_cache=false
spawned=false
collector_pid=
marker_found=false
marker_log=
marker_started=
marker_gc=
recovered=
recover_problem=

# The detached part of a collection, run with `sh -c` in a session of its own (setsid), so that a supervisor that
# kills the caller's process group (the SSM Agent on timeout or cancel) leaves it running. It shares the caller's
# lock (fd 9), leaves the marker, stops the registry in stopped mode, runs the collector given as its arguments,
# and always brings the registry back afterwards: started in stopped mode, restarted in online mode unless
# restart is false or the registry was empty. The caller holds the only write end of the pipe on fd 6: once the
# caller dies or stops waiting, reading it ends, and the collector is stopped (TERM, KILL 10 s later). Its output
# goes to the log; what happened goes to $tmp/collector.result as "<state> <gc exit code|null> <bring-back>".
# shellcheck disable=SC2016
COLLECTOR='set -u
tmp=$1 caller=$2 mode=$3 container=$4 restart=$5 log=$6 marker=$7 gc_container=$8 empty=$9
shift 9
trap "" HUP INT TERM
state=collected gc_exit=null back=none
report() {
  printf "%s %s %s\n" "$state" "$gc_exit" "$back" >"$tmp/collector.result"
  if [ -e "$tmp/caller.gone" ] && [ ! -e "$tmp/caller.waiting" ]; then
    printf "registry-janitor: the caller %s is gone; registry brought back: %s\n" "$caller" "$back"
    rm -rf "$tmp"
  fi
  exit 0
}
if ! { true <&6; } 2>/dev/null; then
  state=unwatched
  report
fi
if ! printf "pid=%s\nmode=%s\nstarted=%s\nlog=%s\ngc_container=%s\n" "$$" "$mode" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$log" "$gc_container" >"$marker"; then
  state=unmarked
  report
fi
if [ "$mode" = stopped ] && ! docker stop "$container" 2>"$tmp/stop.err"; then
  cat "$tmp/stop.err"
  state=stop-failed
  if docker start "$container" >/dev/null 2>&1; then rm -f "$marker"; fi
  report
fi
(
  trap - HUP INT TERM
  exec "$@"
) </dev/null 9>&- &
gc=$!
{
  read -r _ <&6 || :
  : >"$tmp/caller.gone"
  printf "\nregistry-janitor: the caller stopped waiting at %s: stopping the collector\n" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  kill -s TERM "$gc" 2>/dev/null
  [ -z "$gc_container" ] || docker rm -f "$gc_container" >/dev/null 2>&1
  sleep 10
  kill -s KILL "$gc" 2>/dev/null
} </dev/null 9>&- &
watcher=$!
if wait "$gc"; then gc_exit=0; else gc_exit=$?; fi
kill -s KILL "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
printf "\nregistry-janitor: garbage-collect exited %s\n" "$gc_exit"
if [ "$mode" = stopped ]; then
  if docker start "$container" >/dev/null 2>"$tmp/back.err"; then back=started; else back=failed; fi
elif [ "$restart" = true ] && { [ "$gc_exit" -eq 0 ] || ! grep -Eq "$empty" "$log"; }; then
  if docker restart "$container" >/dev/null 2>"$tmp/back.err"; then back=restarted; else back=failed; fi
fi
[ "$back" = failed ] || rm -f "$marker"
report'

json_string_or_null() {
  if [ -n "$1" ]; then printf '"%s"' "$(json_escape "$1")"; else printf null; fi
}

print_collect_summary() {
  reason=
  [ -z "$2" ] || reason=$(printf ',"reason":"%s"' "$(json_escape "$2")")
  warnings=
  if [ "$collected" = true ] && [ "$restarted" = false ] && [ "$gc_mode" = online ]; then
    warnings=$RESTART_WARNING
  fi
  if [ "$collected" = true ] && [ "$redis_cache" = true ]; then
    warnings=${warnings:+$warnings; }$REDIS_WARNING
  fi
  warning=
  [ -z "$warnings" ] || warning=$(printf ',"warning":"%s"' "$(json_escape "$warnings")")
  printf '{"registryJanitor":1,"action":"collect","status":"%s"%s,"mode":"%s","version":%s,"blobsMarked":%s,"blobsDeleted":%s,"manifestsDeleted":%s,"bytesBefore":%s,"bytesAfter":%s,"bytesFreed":%s,"diskUsedPercentBefore":%s,"diskUsedPercentAfter":%s,"restarted":%s,"gcExitCode":%s,"log":%s%s,"durationSeconds":%s}\n' \
    "$1" "$reason" "$gc_mode" "$(json_string_or_null "$version")" "$blobs_marked" "$blobs_deleted" \
    "$manifests_deleted" "$bytes_before" "$bytes_after" "$bytes_freed" "$disk_before" "$disk_after" \
    "$restarted" "$gc_exit" "$(json_string_or_null "$log_file")" "$warning" "$(elapsed)"
  summary_printed=true
}

print_recover_summary() {
  warning=
  if [ "$marker_found" = true ] && [ -z "$recovered" ] && [ "$restart" = false ]; then
    warning=$(printf ',"warning":"%s"' "$(json_escape "$RESTART_WARNING")")
  fi
  printf '{"registryJanitor":1,"action":"recover","status":"%s","reason":"%s","restarted":%s,"log":%s%s,"durationSeconds":%s}\n' \
    "$1" "$(json_escape "$2")" "$restarted" "$(json_string_or_null "$marker_log")" "$warning" "$(elapsed)"
  summary_printed=true
}

print_summary() {
  if [ "$action" = recover ]; then print_recover_summary "$@"; else print_collect_summary "$@"; fi
}

finish() {
  if [ "$1" = failed ]; then
    note "$action failed: ${2:-}"
    [ -z "$log_file" ] || printf 'registry-janitor: collect failed: %s\n' "${2:-}" >>"$log_file" 2>/dev/null || :
  fi
  print_summary "$1" "${2:-}"
  [ "$1" != failed ] || exit 1
  exit 0
}

# Takes over what the detached collector reported; false when it reported nothing usable.
read_collector_result() {
  [ -s "$tmp/collector.result" ] || return 1
  read -r state gc_result back <"$tmp/collector.result" || return 1
  case $state in
  collected | stop-failed | unmarked | unwatched) ;;
  *) return 1 ;;
  esac
  case $back in
  none | started | restarted | failed) ;;
  *) return 1 ;;
  esac
  if [ "$gc_result" != null ] && ! is_number "$gc_result" 3; then return 1; fi
  gc_exit=$gc_result
  [ "$state" = collected ] || collected=false
  case $back in
  started | restarted) restarted=true ;;
  esac
}

# Tells the detached collector that nobody waits for it any more (it then stops the collector and brings the
# registry back), waits for it to end and takes over what it reported. Run from the EXIT trap.
stop_waiting() {
  [ "$spawned" = true ] || return 0
  spawned=false
  : >"$tmp/caller.waiting"
  exec 8>&-
  pid=${collector_pid:-${!:-}}
  [ -z "$pid" ] || wait "$pid" || :
  read_collector_result || :
}

# Starts the detached collector with the collector command in $@ and waits for it; the outcome is in $state,
# $gc_exit, $back and $tmp/stop.err or $tmp/back.err.
run_detached() {
  mkfifo "$tmp/caller" 2>"$tmp/docker.err" || finish failed "$(with_error 'cannot create the pipe the collector watches')"
  exec 8<>"$tmp/caller"
  exec 6<"$tmp/caller"
  spawned=true
  collected=true
  # shellcheck disable=SC2094 # the collector appends to the log it is given
  if command -v setsid >/dev/null 2>&1; then
    setsid sh -c "$COLLECTOR" registry-janitor-collector "$tmp" "$$" "$gc_mode" "$container" "$restart" \
      "$log_file" "$marker_file" "$gc_container" "$EMPTY_REGISTRY" "$@" 8>&- </dev/null >>"$log_file" 2>&1 &
  else
    note 'setsid is not installed: the collection stays in this process group; if it is killed, run the recover action'
    sh -c "$COLLECTOR" registry-janitor-collector "$tmp" "$$" "$gc_mode" "$container" "$restart" \
      "$log_file" "$marker_file" "$gc_container" "$EMPTY_REGISTRY" "$@" 8>&- </dev/null >>"$log_file" 2>&1 &
  fi
  collector_pid=$!
  exec 6<&-
  wait "$collector_pid" || :
  spawned=false
  read_collector_result || finish failed "the detached collector ended without reporting; see the log $log_file"
}

# The marker of a collection that did not finish, each field checked; only a container named as this script names
# its one-off collectors is ever removed.
read_marker() {
  marker_found=false
  marker_log=
  marker_started=
  marker_gc=
  [ -f "$marker_file" ] || return 0
  marker_found=true
  value=$(sed -n 's/^log=//p' "$marker_file" | head -n 1)
  if is_path "$value"; then marker_log=$value; fi
  value=$(sed -n 's/^started=//p' "$marker_file" | head -n 1)
  case $value in
  [0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z) marker_started=$value ;;
  esac
  value=$(sed -n 's/^gc_container=//p' "$marker_file" | head -n 1)
  case ${value#registry-janitor-gc-} in
  "$value" | '' | *[!0-9-]*) ;;
  *) if is_container "$value"; then marker_gc=$value; fi ;;
  esac
}

# Brings the registry back after a collection that did not finish: removes the one-off collector it may have left
# running, then starts the registry, or restarts it (it may have answered from its blob cache while the collector
# deleted) unless RJ_RESTART=false; the marker goes once that is done. $recovered says what was done.
bring_back() {
  recovered=
  [ -z "$marker_gc" ] || docker rm -f "$marker_gc" >/dev/null 2>&1 || :
  if ! running=$(docker inspect --format "{$brace.State.Running}}" "$container" 2>"$tmp/docker.err"); then
    recover_problem=$(with_error 'could not inspect the registry container')
    return 1
  fi
  if [ "$running" != true ]; then
    if ! docker start "$container" >/dev/null 2>"$tmp/docker.err"; then
      recover_problem=$(with_error 'could not start the registry')
      return 1
    fi
    recovered=started
    restarted=true
  elif [ "$marker_found" = true ] && [ "$restart" = true ]; then
    if ! docker restart "$container" >/dev/null 2>"$tmp/docker.err"; then
      recover_problem=$(with_error 'could not restart the registry')
      return 1
    fi
    recovered=restarted
    restarted=true
  fi
  rm -f "$marker_file"
}

unfinished() {
  printf 'a collection%s did not finish%s' "${marker_started:+ started $marker_started}" \
    "${marker_log:+ (log $marker_log)}"
}

# On failure, what the binary or docker printed is in $tmp/docker.err.
detect_version() {
  if docker exec "$container" "$binary" --version >"$tmp/version" 2>&1; then
    version=$(awk 'match($0, /[0-9]+\.[0-9]+\.[0-9]+/) { print substr($0, RSTART, RLENGTH); exit }' "$tmp/version")
  fi
  [ -n "$version" ] && return 0
  cp "$tmp/version" "$tmp/docker.err"
  return 1
}

# Uploads with any file (startedat, data, hash state) written within RJ_UPLOAD_RECENT_MINUTES: new or still
# receiving data. Older ones are abandoned and left to the registry's upload purging.
count_recent_uploads() {
  container_read "$tmp/uploads" find "$repositories_dir" -type f -path '*/_uploads/*' \
    -mmin "-$upload_recent" || return 1
  awk '{
    i = index($0, "/_uploads/"); rest = substr($0, i + 10); j = index(rest, "/")
    if (i > 0 && j > 0) upload[substr($0, 1, i + 9) substr(rest, 1, j - 1)]
  }
  END { n = 0; for (u in upload) n++; print n }' "$tmp/uploads"
}

# Prints "<bytes> <disk used percent or null>"; the bytes are the exact sum of every blob's data file, each
# listed in file $1 as "<size> <path>".
measure() {
  container_read "$1" find "$blobs_dir" -type f -name data -exec stat -c '%s %n' {} + || return 1
  bytes=$(awk '/^[0-9]+ / { total += $1 } END { printf "%.0f\n", total }' "$1")
  percent=null
  if docker exec "$container" df -P "$root" >"$tmp/df" 2>/dev/null; then
    value=$(awk 'NR == 2 { sub(/%$/, "", $5); print $5 }' "$tmp/df")
    case $value in
    '' | *[!0-9]*) ;;
    *) percent=$value ;;
    esac
  fi
  echo "$bytes $percent"
}

# What the last try printed stays in $tmp/ready.out.
registry_answers() {
  docker exec "$container" wget -S -q -O /dev/null -T 5 "http://127.0.0.1:$port/v2/" >"$tmp/ready.out" 2>&1 || :
  grep 'HTTP/' "$tmp/ready.out" >/dev/null
}

wait_until_ready() {
  deadline=$(($(date -u +%s) + ready_seconds))
  until registry_answers; do
    [ "$(date -u +%s)" -lt "$deadline" ] || return 1
    sleep "$poll"
  done
}

# Reads the collector's counts from its log (2.8 prints "N blobs marked, M blobs and K manifests eligible
# for deletion" and one line per swept blob); counts it did not print stay null.
read_gc_counts() {
  awk '
    match($0, /[0-9]+ blobs marked, [0-9]+ blobs and [0-9]+ manifests eligible for deletion/) {
      split(substr($0, RSTART, RLENGTH), w, " ")
      marked = w[1]; eligible = w[4]; manifests = w[7]
    }
    /blob eligible for deletion: sha256:/ { swept++ }
    END {
      if (marked == "") print "null", (swept ? swept : "null"), "null"
      else print marked, eligible, manifests
    }' "$log_file" >"$tmp/gc-counts"
  read -r blobs_marked blobs_deleted manifests_deleted <"$tmp/gc-counts"
}

# Reason $1 for a collection that did not do its work, with the collector's last line and where its log is.
collector_failed() {
  grep -v '^registry-janitor: ' "$log_file" | grep . | tail -n 1 >"$tmp/gc.err" || :
  printf '%s; see the log %s' "$(with_error "$1" "$tmp/gc.err")" "$log_file"
}

# Keeps the ten newest collector logs: a big registry writes a large one every run.
prune_logs() {
  for old in "$log_dir"/gc-*.log; do
    [ -f "$old" ] && printf '%s\n' "$old"
  done | sort -r | sed '1,10d' | while IFS= read -r old; do rm -f "$old"; done
}

take_lock() {
  command -v docker >/dev/null 2>&1 || finish failed 'docker is not installed on this host'
  command -v flock >/dev/null 2>&1 || finish failed 'flock is not installed on this host'
  (: >>"$lock_file") 2>/dev/null || finish failed 'cannot open the lock file'
  exec 9>>"$lock_file"
}

run_collect() {
  take_lock
  flock -n 9 || finish skipped 'another collection is running'

  read_marker
  earlier=
  if [ "$marker_found" = true ]; then
    bring_back || finish failed "$(unfinished) and the registry could not be brought back: $recover_problem"
    earlier="$(unfinished): the registry was ${recovered:-already running} before this collection"
    note "$earlier"
    restarted=false
  fi

  running=$(docker inspect --format "{$brace.State.Running}}" "$container" 2>"$tmp/docker.err") ||
    finish failed "$(with_error 'could not inspect the registry container')"
  [ "$running" = true ] || finish failed 'the registry container is not running'
  detect_version || finish failed "$(with_error 'could not read the registry version from its binary')"
  if [ -z "$config" ]; then
    case $version in
    3.*) config=/etc/distribution/config.yml ;;
    *) config=/etc/docker/registry/config.yml ;;
    esac
  fi

  # A Redis blob descriptor cache survives the restart that empties the in-memory one.
  if docker inspect --format "{${brace}range .Config.Env}}{${brace}println .}}{${brace}end}}" "$container" 2>/dev/null |
    grep -Eq '^REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR=redis$' ||
    docker exec "$container" grep -Eq '^[[:space:]]*blobdescriptor:[[:space:]]*redis' "$config" 2>/dev/null; then
    redis_cache=true
  fi

  deadline=$(($(date -u +%s) + upload_wait))
  while :; do
    uploads=$(count_recent_uploads) || finish failed "$(with_error 'could not check for uploads in progress')"
    [ "$uploads" -gt 0 ] || break
    [ "$(date -u +%s)" -lt "$deadline" ] || finish skipped 'pushes in progress'
    note "$uploads upload(s) in progress: waiting"
    sleep "$poll"
  done

  measured=$(measure "$tmp/blobs.before") || finish failed "$(with_error 'could not measure the blob storage')"
  bytes_before=${measured% *}
  disk_before=${measured#* }

  mkdir -p "$log_dir" 2>/dev/null || finish failed 'cannot create the log directory'
  log_file=${log_dir%/}/gc-$(date -u +%Y%m%dT%H%M%SZ)-$$.log
  (: >"$log_file") 2>/dev/null || {
    log_file=
    finish failed 'cannot write the log file'
  }
  [ -z "$earlier" ] || printf 'registry-janitor: %s\n' "$earlier" >>"$log_file"
  printf 'registry-janitor: garbage-collect %s, mode %s, registry %s, config %s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$gc_mode" "$version" "$config" >>"$log_file"

  if [ "$gc_mode" = stopped ]; then
    image=$(docker inspect --format "{$brace.Image}}" "$container" 2>"$tmp/docker.err") ||
      finish failed "$(with_error 'could not read the registry container image')"
    case $image in
    sha256:*) ;;
    *) finish failed 'could not read the registry container image' ;;
    esac
    case ${image#sha256:} in
    '' | *[!a-f0-9]*) finish failed 'could not read the registry container image' ;;
    esac
    # The one-off collector sees the registry's configuration only with the same REGISTRY_* overrides.
    docker inspect --format "{${brace}range .Config.Env}}{${brace}println .}}{${brace}end}}" "$container" \
      >"$tmp/container.env" 2>"$tmp/docker.err" ||
      finish failed "$(with_error 'could not read the registry container environment')"
    grep -E '^REGISTRY_[A-Z0-9_]+=' "$tmp/container.env" >"$tmp/gc.env" || :
    gc_container=registry-janitor-gc-$started-$$
    run_detached docker run --rm --name "$gc_container" --volumes-from "$container" --env-file "$tmp/gc.env" \
      --entrypoint "$binary" "$image" garbage-collect "$config"
  else
    run_detached docker exec "$container" "$binary" garbage-collect "$config"
  fi

  case $state in
  unwatched) finish failed 'the detached collector could not watch this script: nothing was collected' ;;
  unmarked) finish failed "cannot write the marker $marker_file: nothing was collected" ;;
  stop-failed) finish failed "$(with_error 'could not stop the registry' "$tmp/stop.err")" ;;
  esac

  status='done'
  reason=
  if [ "$gc_exit" -ne 0 ]; then
    if grep -E "$EMPTY_REGISTRY" "$log_file" >/dev/null; then
      reason='the registry is empty: nothing to collect'
      collected=false
      blobs_marked=0
      blobs_deleted=0
      manifests_deleted=0
    else
      status=failed
      reason=$(collector_failed 'garbage collection failed')
    fi
  fi
  [ "$collected" = false ] || read_gc_counts
  # 2.x ends every collection with its mark summary: without it, what ran was not the collector (a wrong
  # binary, entrypoint or config path that still exits 0). v3 prints another format: there the bytes tell.
  if [ "$status" = 'done' ] && [ "$collected" = true ] && [ "$blobs_marked" = null ]; then
    case $version in
    3.*) ;;
    *)
      status=failed
      reason=$(collector_failed "$NO_MARK_SUMMARY")
      ;;
    esac
  fi
  prune_logs

  if [ "$back" = failed ]; then
    [ "$gc_mode" = stopped ] && finish failed "$(with_error 'could not start the registry again' "$tmp/back.err")"
    finish failed "$(with_error 'could not restart the registry' "$tmp/back.err")"
  fi
  if ! wait_until_ready; then
    status=failed
    reason=$(with_error 'the registry did not answer /v2/ in time after the collection' "$tmp/ready.out")
  fi

  # Freed: the blobs that existed before and are gone, so that a push meanwhile does not hide what went.
  if measured=$(measure "$tmp/blobs.after"); then
    bytes_after=${measured% *}
    disk_after=${measured#* }
    bytes_freed=$(awk 'FILENAME == ARGV[1] { after[$2]; next } /^[0-9]+ / && !($2 in after) { freed += $1 }
      END { printf "%.0f\n", freed }' "$tmp/blobs.after" "$tmp/blobs.before")
  fi
  finish "$status" "$reason"
}

# Waits up to RJ_READY_SECONDS for a running collection to end (its watchdog brings the registry back), then
# brings the registry back if a collection did not finish or the container is stopped.
run_recover() {
  take_lock
  deadline=$(($(date -u +%s) + ready_seconds))
  until flock -n 9; do
    [ "$(date -u +%s)" -lt "$deadline" ] ||
      finish 'nothing to do' 'another collection is running: it brings the registry back when it ends'
    sleep "$poll"
  done
  read_marker
  bring_back || finish failed "$recover_problem"
  case $marker_found/$recovered in
  true/started) reason="$(unfinished) and left the registry stopped: started it" ;;
  true/restarted) reason="$(unfinished): restarted the registry, whose blob cache may hold blobs the collector deleted" ;;
  true/) finish 'nothing to do' "$(unfinished); the registry is running and RJ_RESTART is false, so it was not restarted" ;;
  false/started) reason='the registry container was stopped: started it' ;;
  *) finish 'nothing to do' 'the registry is running and no collection was interrupted' ;;
  esac
  wait_until_ready ||
    finish failed "$(with_error "$reason, but it did not answer /v2/ in time" "$tmp/ready.out")"
  finish 'done' "$reason"
}

trap on_exit EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

tmp=$(mktemp -d "${TMPDIR:-/tmp}/registry-janitor.XXXXXX")

case $action in
inventory) run_inventory ;;
collect) run_collect ;;
recover) run_recover ;;
esac
