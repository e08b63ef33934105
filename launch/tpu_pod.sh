#!/usr/bin/env bash
# Train Unified-IO on a Cloud TPU VM slice (single host or pod): create -> setup -> train -> delete.
# Run it from your own machine; every step is a gcloud command. See launch/README.md.
#
# Written for bash 3.2 as well (the macOS /bin/bash): no associative arrays, no ${x@Q},
# and empty arrays are expanded as ${a[@]+"${a[@]}"} so that `set -u` accepts them.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: launch/tpu_pod.sh [options] create|setup|train|delete [train args...]

  create   make the slice (tpu-vm create, or a queued resource with --queued)
  setup    copy `git archive HEAD` to every worker, unpack it, install the venv
  train    run `python -m unified_io.train` on every worker at once; arguments after
           `train` (or after `--`) go to the trainer, e.g. --config.optimizer.lr=1e-3
  delete   delete the slice (it is billed until you do)

options (each also read from the environment variable in brackets):
  --name=NAME             TPU name [NAME]                          required
  --zone=ZONE             e.g. us-central2-b [ZONE]                required
  --project=PROJECT       gcloud project [PROJECT]                 default: gcloud config
  --accelerator=TYPE      e.g. v4-32 [ACCELERATOR]                 required by create
  --runtime=VERSION       TPU software version, e.g. tpu-ubuntu2204-base [RUNTIME]
                                                                   required by create
  --config=PATH           e.g. configs/xl.py [CONFIG]              required by train
  --workdir=gs://...      checkpoints and logs [WORKDIR]           required by train
  --tfds_data_dir=gs://...  TFDS datasets [TFDS_DATA_DIR]          optional
  --queued                create/delete a queued resource instead of a plain TPU VM
  --spot                  create spot (preemptible) capacity
  --detach                train in the background on the workers (output in
                          ~/unified-io/train.log there) so closing this terminal is safe
  --dry-run               print the commands (prefixed "+ ") instead of running them [DRY_RUN=1]
EOF
}

die_usage() {  # exit code 2: the command line or the settings are wrong, nothing was run
  echo "tpu_pod.sh: error: $*" >&2
  exit 2
}

# Print arguments as shell words, quoting only those that need it, so a printed command
# can be pasted back into a shell (and the remote --command survives ssh unchanged).
# In --flag=value words only the value is quoted, which reads better.
quote() {
  local out="" w flag
  for w in "$@"; do
    flag=""
    case "$w" in
      --*=*) [[ "${w%%=*}" == *[!A-Za-z0-9_.-]* ]] || { flag="${w%%=*}="; w="${w#*=}"; } ;;
    esac
    case "$w" in
      *\'*) w="'$(printf '%s' "$w" | sed "s/'/'\\\\''/g")'" ;;
      "" | *[!A-Za-z0-9_./:=@%+,-]*) w="'$w'" ;;
    esac
    out="$out${out:+ }$flag$w"
  done
  printf '%s\n' "$out"
}

run() {  # echo the command; run it unless this is a dry run
  if [ "$DRY_RUN" = 1 ]; then
    echo "+ $(quote "$@")"
  else
    echo "+ $(quote "$@")" >&2
    "$@"
  fi
}

NAME="${NAME:-}"
ZONE="${ZONE:-}"
PROJECT="${PROJECT:-}"
ACCELERATOR="${ACCELERATOR:-}"
RUNTIME="${RUNTIME:-}"
CONFIG="${CONFIG:-}"
WORKDIR="${WORKDIR:-}"
TFDS_DATA_DIR="${TFDS_DATA_DIR:-}"
DRY_RUN="${DRY_RUN:-0}"
QUEUED=0
SPOT=0
DETACH=0
SUBCOMMAND=""
TRAIN_ARGS=()

while [ $# -gt 0 ]; do
  case "$1" in
    --name=*) NAME="${1#*=}" ;;
    --zone=*) ZONE="${1#*=}" ;;
    --project=*) PROJECT="${1#*=}" ;;
    --accelerator=*) ACCELERATOR="${1#*=}" ;;
    --runtime=*) RUNTIME="${1#*=}" ;;
    --config=*) CONFIG="${1#*=}" ;;
    --workdir=*) WORKDIR="${1#*=}" ;;
    --tfds_data_dir=*) TFDS_DATA_DIR="${1#*=}" ;;
    --queued) QUEUED=1 ;;
    --spot) SPOT=1 ;;
    --detach) DETACH=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help) usage; exit 0 ;;
    --)
      shift
      TRAIN_ARGS+=("$@")
      break
      ;;
    *)
      if [ -z "$SUBCOMMAND" ]; then
        case "$1" in
          create | setup | train | delete) SUBCOMMAND="$1" ;;
          *) die_usage "unknown argument '$1' (see --help)" ;;
        esac
      elif [ "$SUBCOMMAND" = train ]; then
        TRAIN_ARGS+=("$1")  # the trainer's own flags, e.g. --config.optimizer.lr=1e-3
      else
        die_usage "unexpected argument '$1' after '$SUBCOMMAND'"
      fi
      ;;
  esac
  shift
done

[ -n "$SUBCOMMAND" ] || { usage >&2; die_usage "no subcommand (create, setup, train or delete)"; }
if [ "${#TRAIN_ARGS[@]}" -gt 0 ] && [ "$SUBCOMMAND" != train ]; then
  die_usage "extra arguments are only accepted by train: $(quote "${TRAIN_ARGS[@]}")"
fi

# Name every missing setting at once, with both ways to give it.
require() {
  local missing="" var
  for var in "$@"; do
    if [ -z "${!var}" ]; then
      missing="$missing  $var (--$(echo "$var" | tr '[:upper:]' '[:lower:]')=... or env $var)"$'\n'
    fi
  done
  [ -z "$missing" ] || die_usage "'$SUBCOMMAND' needs these settings:"$'\n'"${missing%$'\n'}"
}

require NAME ZONE
case "$SUBCOMMAND" in
  create) require ACCELERATOR RUNTIME ;;
  train)
    require CONFIG WORKDIR
    # Every worker writes its part of each checkpoint into WORKDIR, so it must be shared.
    case "$WORKDIR" in
      gs://*) ;;
      *) die_usage "WORKDIR must be a gs:// path that all workers share, got '$WORKDIR'" ;;
    esac
    ;;
esac

GCLOUD_FLAGS=("--zone=$ZONE")
[ -z "$PROJECT" ] || GCLOUD_FLAGS+=("--project=$PROJECT")
# shellcheck disable=SC2088  # the tilde is meant for the worker's shell, not this one
REMOTE_DIR="~/unified-io"
TARBALL_NAME="unified-io.tar.gz"

cmd_create() {
  local extra=()
  [ "$SPOT" = 0 ] || extra+=(--spot)
  if [ "$QUEUED" = 1 ]; then
    # The queued resource and the TPU VM it eventually provisions share NAME, so ssh/scp
    # below work the same way once it is ACTIVE.
    run gcloud compute tpus queued-resources create "$NAME" --node-id="$NAME" \
      "${GCLOUD_FLAGS[@]}" --accelerator-type="$ACCELERATOR" --runtime-version="$RUNTIME" \
      ${extra[@]+"${extra[@]}"}
  else
    run gcloud compute tpus tpu-vm create "$NAME" "${GCLOUD_FLAGS[@]}" \
      --accelerator-type="$ACCELERATOR" --version="$RUNTIME" ${extra[@]+"${extra[@]}"}
  fi
}

cmd_setup() {
  local root tarball jax_version steps apt="sudo apt-get -q -o DPkg::Lock::Timeout=600"
  root="$(cd "$(dirname "$0")/.." && pwd)"
  tarball="${TMPDIR:-/tmp}/$NAME-$TARBALL_NAME"
  # git archive ships committed files only; say so rather than train stale code silently.
  if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    echo "tpu_pod.sh: warning: uncommitted changes are not shipped (git archive HEAD)" >&2
  fi
  # requirements.txt pins the CPU jaxlib; the workers also need the matching TPU backend.
  jax_version="$(sed -n 's/^jax==//p' "$root/requirements.txt")"
  steps=(
    "mkdir -p $REMOTE_DIR"
    "cd $REMOTE_DIR"
    # Replace the code but keep .venv, so re-running setup after a commit is quick.
    "find . -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +"
    "tar -xzf ~/$TARBALL_NAME"
    # The project needs Python 3.11; the TPU images ship 3.10. The lock timeout waits for the
    # unattended upgrades a fresh VM runs at boot instead of failing on the dpkg lock.
    "{ command -v python3.11 >/dev/null || { $apt update && $apt install -y python3.11 python3.11-venv; }; }"
    "{ test -x .venv/bin/python || python3.11 -m venv .venv; }"
    ".venv/bin/pip install -q --upgrade pip"
    ".venv/bin/pip install -q -r requirements.txt"
    ".venv/bin/pip install -q --no-deps -e ."
    ".venv/bin/pip install -q $(quote "jax[tpu]${jax_version:+==$jax_version}")"
  )
  local remote="${steps[0]}" step
  for step in "${steps[@]:1}"; do remote="$remote && $step"; done

  run git -C "$root" archive --format=tar.gz -o "$tarball" HEAD
  run gcloud compute tpus tpu-vm scp "$tarball" "$NAME:$TARBALL_NAME" --worker=all \
    "${GCLOUD_FLAGS[@]}"
  run gcloud compute tpus tpu-vm ssh "$NAME" --worker=all "${GCLOUD_FLAGS[@]}" --command="$remote"
}

cmd_train() {
  local env="" python train
  # TFDS reads TFDS_DATA_DIR itself, so no trainer flag is needed for it.
  [ -z "$TFDS_DATA_DIR" ] || env="TFDS_DATA_DIR=$(quote "$TFDS_DATA_DIR") "
  python=".venv/bin/python -m unified_io.train $(quote "--config=$CONFIG" "--workdir=$WORKDIR" \
    ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"})"
  if [ "$DETACH" = 1 ]; then
    # nohup and redirecting all three streams let ssh return while training goes on.
    train="${env}nohup $python > train.log 2>&1 < /dev/null &"
  else
    train="$env$python"
  fi
  # No --coordinator_address etc.: on TPU, jax.distributed.initialize() finds the pod itself.
  run gcloud compute tpus tpu-vm ssh "$NAME" --worker=all "${GCLOUD_FLAGS[@]}" \
    --command="cd $REMOTE_DIR && $train"
}

cmd_delete() {
  if [ "$QUEUED" = 1 ]; then
    # --force also deletes the TPU VM the queued resource provisioned.
    run gcloud compute tpus queued-resources delete "$NAME" "${GCLOUD_FLAGS[@]}" --force --quiet
  else
    run gcloud compute tpus tpu-vm delete "$NAME" "${GCLOUD_FLAGS[@]}" --quiet
  fi
}

"cmd_$SUBCOMMAND"
