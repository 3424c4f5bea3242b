#!/usr/bin/env bash
# Validates the Kubernetes manifests offline with kubeconform (strict: unknown fields and wrong types fail)
# against the Kubernetes API's JSON schemas. No cluster is needed.
#
# Usage: deploy/check-k8s.sh [DIR]        (default deploy/k8s)
#
# - kubeconform: on PATH, or built once into $CHURNWATCH_HOME/bin with the machine's Go from the Go module
#   proxy (go install github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION).
# - schemas: kubeconform downloads them from GitHub by default, which is not reachable from every machine;
#   the PyPI package kubernetes-validate ships the same schemas (one folder per Kubernetes version), so its
#   wheel is fetched once with pip and the chosen version's strict schemas are unpacked into
#   $CHURNWATCH_HOME/k8s-schemas (their "$ref"s made absolute file paths, which kubeconform resolves).
# - with kubectl present and a kustomization.yaml in DIR, `kubectl kustomize DIR` (what `kubectl apply -k` would
#   send) is validated; without kubectl, every file of DIR but kustomization.yaml.
set -euo pipefail

readonly REPO="$(cd "$(dirname "$0")/.." && pwd)"
readonly DIR="${1:-$REPO/deploy/k8s}"
readonly KUBE_VERSION="${CHURNWATCH_K8S_VERSION:-1.33.0}"
readonly KUBECONFORM_VERSION=v0.6.7
readonly SCHEMAS_PACKAGE=kubernetes-validate==1.37.0
readonly CHURNWATCH_HOME="${CHURNWATCH_HOME:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/churnwatch}"
readonly SCHEMA_ROOT="$CHURNWATCH_HOME/k8s-schemas"
readonly SCHEMA_DIR="$SCHEMA_ROOT/v$KUBE_VERSION-local-strict"

say() { printf 'check-k8s: %s\n' "$*"; }
die() { printf 'check-k8s: error: %s\n' "$*" >&2; exit 1; }

kubeconform_bin() {
    if command -v kubeconform >/dev/null 2>&1; then
        command -v kubeconform
        return
    fi
    local built="$CHURNWATCH_HOME/bin/kubeconform"
    if [[ ! -x "$built" ]]; then
        command -v go >/dev/null 2>&1 || die "kubeconform is missing and there is no Go to build it (install golang)"
        say "building kubeconform $KUBECONFORM_VERSION with $(go version | cut -d' ' -f3) into $CHURNWATCH_HOME/bin" >&2
        mkdir -p "$CHURNWATCH_HOME/bin"
        GOBIN="$CHURNWATCH_HOME/bin" GOFLAGS=-buildvcs=false go install \
            "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" >&2 \
            || die "go install kubeconform failed"
    fi
    printf '%s\n' "$built"
}

python_bin() {
    if [[ -x "$REPO/.venv/bin/python" ]]; then
        printf '%s\n' "$REPO/.venv/bin/python"
    else
        command -v python3 || die "python3 is needed to fetch the schemas"
    fi
}

# Unpacks one version's strict schemas from the wheel, rewriting "/api/_definitions.json" references to the
# unpacked file; a temp folder renamed into place, so a half-done run never leaves a broken cache.
ensure_schemas() {
    [[ -f "$SCHEMA_DIR/_definitions.json" ]] && return 0
    local py tmp
    py="$(python_bin)"
    tmp="$(mktemp -d "$SCHEMA_ROOT.tmp.XXXXXX" 2>/dev/null || { mkdir -p "$(dirname "$SCHEMA_ROOT")"; mktemp -d "$SCHEMA_ROOT.tmp.XXXXXX"; })"
    say "fetching Kubernetes $KUBE_VERSION JSON schemas ($SCHEMAS_PACKAGE from PyPI)"
    "$py" -m pip download -q --no-deps -d "$tmp/wheel" "$SCHEMAS_PACKAGE" || { rm -rf "$tmp"; die "pip download $SCHEMAS_PACKAGE failed"; }
    "$py" - "$tmp/wheel" "$tmp/out" "v$KUBE_VERSION-local-strict" "$SCHEMA_DIR" <<'PY' || { rm -rf "$tmp"; die "unpacking the schemas failed"; }
import pathlib, sys, zipfile
wheel_dir, out, folder, final = sys.argv[1:]
wheel = next(pathlib.Path(wheel_dir).glob("*.whl"))
prefix = f"kubernetes_validate/kubernetes-json-schema/{folder}/"
target = pathlib.Path(out)
target.mkdir(parents=True)
with zipfile.ZipFile(wheel) as zf:
    names = [n for n in zf.namelist() if n.startswith(prefix) and n.endswith(".json")]
    if not names:
        sys.exit(f"{wheel.name} has no {folder}")
    for name in names:
        text = zf.read(name).decode()
        text = text.replace('"/api/_definitions.json', f'"file://{final}/_definitions.json')
        (target / name[len(prefix):]).write_text(text)
PY
    mkdir -p "$SCHEMA_ROOT"
    rm -rf "$SCHEMA_DIR"
    mv "$tmp/out" "$SCHEMA_DIR"
    rm -rf "$tmp"
}

main() {
    [[ -d "$DIR" ]] || die "no manifest folder at $DIR"
    local kc
    kc="$(kubeconform_bin)"
    ensure_schemas
    local args=(-strict -summary -kubernetes-version "$KUBE_VERSION"
        -schema-location "$SCHEMA_ROOT/{{.NormalizedKubernetesVersion}}-local-strict/{{.ResourceKind}}{{.KindSuffix}}.json")
    # What `kubectl apply -k` would send when kubectl can build it (a file missing from the kustomization then
    # goes unchecked here: tests/ops/test_k8s_manifests.py checks the list); otherwise each file on its own.
    if [[ -f "$DIR/kustomization.yaml" ]] && command -v kubectl >/dev/null 2>&1; then
        local built
        built="$(kubectl kustomize "$DIR")" || die "kubectl kustomize $DIR failed"
        printf '%s\n' "$built" | "$kc" "${args[@]}" -
    else
        "$kc" "${args[@]}" -ignore-filename-pattern 'kustomization\.yaml$' "$DIR"
    fi
    say "manifests in $DIR are valid for Kubernetes $KUBE_VERSION"
}

main
