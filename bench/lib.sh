# Shared by the bench scripts (sourced, from the repository's root).

# release_bin VAR KIND NAME: the binary NAME (KIND `bin` or `example`) for VAR. If VAR is
# set (a prebuilt binary, e.g. TRIBUTARY_BIN=...), it is used as it is; otherwise NAME is
# built in release and VAR set to its path under $CARGO_TARGET_DIR (or ./target).
release_bin() {
    local var=$1 kind=$2 name=$3
    if [ -z "${!var:-}" ]; then
        cargo build --release --locked --quiet "--$kind" "$name"
        local dir="${CARGO_TARGET_DIR:-$PWD/target}/release"
        if [ "$kind" = example ]; then dir="$dir/examples"; fi
        printf -v "$var" '%s' "$dir/$name"
    fi
    [ -x "${!var}" ] || { echo "$0: no $name at ${!var}" >&2; exit 1; }
}
