# ringlimit's image: built in one stage, run from a second that holds only what `serve` needs.
# docker build -t ringlimit:latest .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p . && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    GRPC_PORT=8081 \
    HTTP_PORT=8080 \
    CONFIG_DIR=/app/config
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/build/src ./build/src
# Read at run time: the Lua script beside its source path, the .proto files for reflection.
COPY src/store/redis/bucket-commit.lua ./src/store/redis/
COPY proto ./proto
COPY config ./config
# The image's own unprivileged user; nothing in /app is writable by it.
USER node
EXPOSE 8081 8080
HEALTHCHECK --interval=10s --timeout=2s CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.HTTP_PORT+'/livez').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "build/src/main.js"]
CMD ["serve"]
