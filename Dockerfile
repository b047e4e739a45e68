# ebb runs its TypeScript through tsx: no build step, the image holds the sources.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY migrations ./migrations
COPY tsconfig.json ./
USER node
# Reachable from outside the container: ebb then refuses to start without EBB_API_TOKEN
# (or EBB_API_TOKEN_FILE, or --no-api); see README "Operating ebb".
ENV EBB_HTTP_HOST=0.0.0.0
ENTRYPOINT ["node", "/app/bin/ebb.mjs"]
CMD ["start"]
