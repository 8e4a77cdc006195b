#!/bin/bash
# Fails if a production file holds a planted-bug name ("bug." then a name character, not part of a
# longer word such as "debug."), or if a planted-bug variant holds none (then the check is blind).
# Usage: no_planted_bugs_shipped_test.sh --production FILE... --planted FILE...
set -u
pattern='(^|[^A-Za-z0-9_])bug\.[a-z0-9][a-z0-9._/-]*'
mode=""
production=0
planted=0
failed=0
for arg in "$@"; do
  case "${arg}" in
    --production | --planted)
      mode="${arg}"
      continue
      ;;
  esac
  if [[ -n "${mode}" && ! -f "${arg}" ]]; then
    echo "FAIL: ${arg} is missing"
    failed=1
    continue
  fi
  case "${mode}" in
    --production)
      production=$((production + 1))
      found="$(grep -a -o -E "${pattern}" "${arg}" | tr -d '\000' | sort -u | head -5)"
      if [[ -n "${found}" ]]; then
        echo "FAIL: ${arg} ships planted bugs:"
        echo "${found}"
        failed=1
      fi
      ;;
    --planted)
      planted=$((planted + 1))
      if ! grep -a -q -E "${pattern}" "${arg}"; then
        echo "FAIL: ${arg} is a planted-bug variant but holds no bug name: the check is blind"
        failed=1
      fi
      ;;
    *)
      echo "usage: $0 --production FILE... --planted FILE..." >&2
      exit 2
      ;;
  esac
done
if ((production == 0 || planted == 0)); then
  echo "FAIL: no production (${production}) or no planted-bug (${planted}) files given"
  exit 1
fi
echo "${production} production files hold no planted bug; ${planted} variant files hold some"
exit "${failed}"
