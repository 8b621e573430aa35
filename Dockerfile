# The bgpnet image: the agent (`bgpnet`, with ExaBGP, pyroute2, the kubernetes client) and a self-contained
# copy of the CNI plugin that the DaemonSet's init container installs on the host.
#
# Build:  docker build -t bgpnet:0.1.0 .        or        podman build -t bgpnet:0.1.0 .
# Plain Dockerfile syntax (no BuildKit features), so docker, podman and buildah all build it.
#
# BASE is any Debian 12 (bookworm) image with Python 3.11 and its venv module: the public python image by
# default, or one built from Debian's own packages where no registry is reachable (bgpnet.lab.image does that
# with mmdebstrap: `--build-arg BASE=localhost/bgpnet-base:bookworm`; tests/privileged/test_image_daemonset.py
# builds and runs it). Only a shell, apt-get and `python3` are assumed of it.
#
# Why the CNI plugin is bundled with its own interpreter: the kubelet's runtime executes the plugin on the
# HOST, outside this image, so the `bgpnet-cni` console script pip generates (shebang: this image's python)
# would not run there. Hosts cannot be assumed to have a suitable python3 (Flatcar, Talos, Bottlerocket and
# minimal images have none; others have 3.6-3.12). So the image carries a relocatable copy of its own
# interpreter: the python binary, its stdlib, the `cni` package (stdlib-only by design) and every shared
# library they load, glibc's dynamic loader included, with the ELF interpreter and RPATH pointing into the
# bundle. On the node it needs nothing but a Linux kernel of the image's architecture: no python3, no libc
# of a particular version, not even /bin/sh. Cost: ~40 MB under <cni-bin>/bgpnet/.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

# iproute2: `ip route show proto bgpnet` and friends when debugging from `kubectl exec`.
# nftables: the agent's natOutgoing rules go to the kernel through `nft -j` (bgpnet/nat/nft.py).
# patchelf: the bundle's ELF interpreter must be an absolute path, known only at install time (the host's
# CNI bin dir), so the init container sets it (image/bgpnet-install-cni).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iproute2 nftables patchelf \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

# bgpnet lives in its own virtualenv: Debian's python3 refuses `pip install` into the system (PEP 668,
# "externally managed"), and on the python image the venv costs nothing. Its bin/ comes first on PATH, so
# `bgpnet`, `python3` and `pip` below and in `kubectl exec` are the venv's.
RUN python3 -m venv /opt/bgpnet
ENV PATH=/opt/bgpnet/bin:$PATH

# The project, installed the way setup.cfg declares it: its install_requires are exactly what gets installed.
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY bgpnet/ bgpnet/
COPY cni/ cni/
RUN python3 -m pip install --no-cache-dir . \
 && cd / && rm -rf /src
WORKDIR /

# The reference plugins the node's conflist chains after bgpnet-cni (portmap for hostPort, bandwidth for the
# bandwidth annotations), from Debian's containernetworking-plugins: the init container installs them on hosts
# that lack them (kubeadm's kubernetes-cni package has them; minimal hosts may not). Only the two binaries stay.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends containernetworking-plugins \
 && mkdir -p /opt/bgpnet-cni-chained && cp /usr/lib/cni/portmap /usr/lib/cni/bandwidth /opt/bgpnet-cni-chained/ \
 && apt-get purge -y containernetworking-plugins && apt-get clean && rm -rf /var/lib/apt/lists/*

# The relocatable CNI plugin bundle, built from the base's own interpreter (the venv's python3 is a symlink to
# it), and the init container's installer for it.
COPY image/bgpnet-bundle-cni image/bgpnet-install-cni /usr/local/bin/
RUN BUNDLE=/opt/bgpnet-cni bgpnet-bundle-cni

# The agent runs as root with only NET_ADMIN and NET_BIND_SERVICE (see manifests/30-daemonset.yaml).
ENTRYPOINT ["bgpnet"]
CMD ["agent"]
