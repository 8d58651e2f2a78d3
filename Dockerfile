# The controller image for running stratus in a Kubernetes cluster (manifests/).
#   docker build -t stratus/stratus-controller:0.1.0 .
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ pkg-config libvirt-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
ENV npm_config_build_from_source=true
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.json && node --import tsx ui/build.ts && npm prune --omit=dev

FROM node:20-bookworm-slim
# libvirt0 for the binding, virsh for pools/networks, ssh for qemu+ssh:// URIs and guests,
# qemu-img for copy-on-write boot disks, git for Projects' sources and push remotes (git
# http-backend), ip (iproute2) for container network attachment, openssl for `stratus serve`'s
# own CA and certificates, nft, conntrack and sysctl (procps) for ElasticIP NAT. (Cloud-init seed ISOs are
# built in-process: no xorriso.) test/unit/manifests/dockerfile.test.ts checks that every program the
# code spawns is here.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvirt0 libvirt-clients openssh-client qemu-utils git iproute2 nftables conntrack procps ca-certificates openssl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/crds ./crds
COPY --from=build /src/bin ./bin
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/stratus"]
CMD ["controller", "--in-cluster"]
