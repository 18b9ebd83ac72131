# rks — build and run. (Untested here: this environment has no Docker engine.)
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY openapi ./openapi
COPY src ./src
COPY mock-callback-server ./mock-callback-server
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY openapi ./openapi
COPY bin ./bin
USER node
EXPOSE 8080
ENTRYPOINT ["bin/rks"]
CMD ["serve"]
