"""A sidecar under `outboundTrafficPolicy: REGISTRY_ONLY` whose node carries no pod labels.

What `heft sidecar` and `heft why` must handle apart from the `sidecar` scenario:
- the outbound traffic policy as istiod writes it under REGISTRY_ONLY: `virtualOutbound` sends
  unmatched connections to `BlackHoleCluster` and the route configurations end in `block_all`;
- a node with no `LABELS` (a VM workload, or a proxy started by hand): no `workloadSelector` can
  be derived;
- the same proxy's `/config_dump` without `?include_eds`, as a user who forgets it captures it:
  EDS clusters and no endpoint configurations.

One push of the `sidecar` scenario's services, all acknowledged.
"""

import istio
import scenario_sidecar
from scenario import Step
from xds_server import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET

VERSION = "2025-06-01T12:00:00Z/1"


def node():
    n = scenario_sidecar.node()
    n["id"] = "sidecar~127.0.0.1~ratings-vm.shop~shop.svc.cluster.local"
    n["cluster"] = "ratings-vm.shop"
    meta = n["metadata"]
    del meta["LABELS"]
    meta.update(NAMESPACE="shop", WORKLOAD_NAME="ratings-vm", NAME="ratings-vm",
                OWNER="kubernetes://apis/networking.istio.io/v1/namespaces/shop/workloadentries/ratings-vm")
    return n


def registry_only(route_configuration):
    """The route configuration with its catch-all as REGISTRY_ONLY writes it: block_all."""
    vhosts = [vh for vh in route_configuration["virtual_hosts"] if vh["name"] not in ("allow_any", "block_all")]
    return {**route_configuration, "virtual_hosts": vhosts + [istio.block_all_vhost()]}


class RegistryOnly(scenario_sidecar.Sidecar):
    name = "registry-only"
    # The dump as `kubectl exec … curl localhost:15000/config_dump` gives it, without endpoints.
    extra_captures = [("config_dump_no_eds.json", "/config_dump")]

    def node(self):
        return node()

    def steps(self):
        outbound, assignments = scenario_sidecar.outbound_clusters_and_endpoints()
        special, special_assignments = scenario_sidecar.special_clusters()
        listeners = [scenario_sidecar.virtual_outbound("BlackHoleCluster"), scenario_sidecar.virtual_inbound(),
                     scenario_sidecar.http_outbound(9080), scenario_sidecar.http_outbound(8080),
                     scenario_sidecar.mongodb_outbound((80, 20))]
        routes = [registry_only(scenario_sidecar.route_9080()), registry_only(scenario_sidecar.route_8080())]
        return [Step("initial", VERSION, {
            CLUSTER: outbound + special, ENDPOINT: assignments + special_assignments,
            LISTENER: listeners, ROUTE: routes, SECRET: self.secrets,
        })]
