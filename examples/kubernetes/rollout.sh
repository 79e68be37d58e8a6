#!/usr/bin/env bash
# A rolling restart that moves the master once: the standbys first, youngest first, the master
# last, one pod at a time, each waited for until every member agrees again (every pod Ready).
# Needs kubectl and a conclave CLI (npx conclave) that can reach a member: run it in a pod of
# the cluster, or through `kubectl port-forward`.
set -euo pipefail
NS=${NS:-default}
SEED=${SEED:-orders.$NS.svc.cluster.local:7000}
REPLICAS=$(kubectl -n "$NS" get statefulset orders -o jsonpath='{.spec.replicas}')
# Member names are pod names (--name $(POD_NAME)); ranks from the view: 0 is the master.
mapfile -t ORDER < <(npx conclave status --seed "$SEED" --json | node -e '
  let s = ""; process.stdin.on("data", d => { s += d }).on("end", () => {
    const members = JSON.parse(s).members.sort((a, b) => b.rank - a.rank)   // youngest first, master last
    for (const m of members) console.log(m.name)
  })')
for pod in "${ORDER[@]}"; do
  echo "restarting $pod"
  kubectl -n "$NS" delete pod "$pod" --wait=true
  kubectl -n "$NS" wait --for=condition=Ready "pod/$pod" --timeout=120s
  # Ready means in a settled view; wait until the view holds every replica again.
  until [ "$(npx conclave status --seed "$SEED" --json | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).members.length')" = "$REPLICAS" ]; do sleep 1; done
done
