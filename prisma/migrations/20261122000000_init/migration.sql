-- CreateTable
CREATE TABLE "api_keys" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "models" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "labels" JSONB NOT NULL DEFAULT '{}',
    "budget_amount" DECIMAL(20,6),
    "budget_period" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_key_secrets" (
    "hash" TEXT NOT NULL,
    "key_id" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_key_secrets_pkey" PRIMARY KEY ("hash")
);

-- CreateTable
CREATE TABLE "request_logs" (
    "id" BIGSERIAL NOT NULL,
    "request_id" TEXT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "key_id" TEXT,
    "route" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "channel" TEXT,
    "status" INTEGER NOT NULL,
    "duration_ms" INTEGER NOT NULL,
    "attempts" INTEGER NOT NULL,
    "stream" BOOLEAN NOT NULL,
    "prompt_tokens" INTEGER NOT NULL,
    "completion_tokens" INTEGER NOT NULL,
    "cached_tokens" INTEGER NOT NULL,
    "cost" DECIMAL(20,10) NOT NULL,
    "error_code" TEXT,

    CONSTRAINT "request_logs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "usage_daily" (
    "day" DATE NOT NULL,
    "key_id" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "requests" BIGINT NOT NULL DEFAULT 0,
    "errors" BIGINT NOT NULL DEFAULT 0,
    "prompt_tokens" BIGINT NOT NULL DEFAULT 0,
    "completion_tokens" BIGINT NOT NULL DEFAULT 0,
    "cached_tokens" BIGINT NOT NULL DEFAULT 0,
    "cost" DECIMAL(24,10) NOT NULL DEFAULT 0,

    CONSTRAINT "usage_daily_pkey" PRIMARY KEY ("day","key_id","channel","model")
);

-- CreateTable
CREATE TABLE "media_tasks" (
    "id" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "upstream_task_id" TEXT NOT NULL,
    "key_id" TEXT,
    "model" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "progress" INTEGER,
    "result" JSONB,
    "error" JSONB,
    "poll_attempts" INTEGER NOT NULL DEFAULT 0,
    "next_poll_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "completed_at" TIMESTAMPTZ(3),

    CONSTRAINT "media_tasks_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "api_keys_updated_at_idx" ON "api_keys"("updated_at");

-- CreateIndex
CREATE INDEX "api_key_secrets_key_id_idx" ON "api_key_secrets"("key_id");

-- CreateIndex
CREATE INDEX "request_logs_at_idx" ON "request_logs"("at");

-- CreateIndex
CREATE INDEX "request_logs_key_id_at_idx" ON "request_logs"("key_id", "at");

-- CreateIndex
CREATE INDEX "usage_daily_key_id_day_idx" ON "usage_daily"("key_id", "day");

-- CreateIndex
CREATE UNIQUE INDEX "media_tasks_channel_upstream_task_id_key" ON "media_tasks"("channel", "upstream_task_id");

-- CreateIndex
CREATE INDEX "media_tasks_status_next_poll_at_idx" ON "media_tasks"("status", "next_poll_at");

-- AddForeignKey
ALTER TABLE "api_key_secrets" ADD CONSTRAINT "api_key_secrets_key_id_fkey" FOREIGN KEY ("key_id") REFERENCES "api_keys"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Not expressible in schema.prisma: relays find changed keys by polling updated_at, so it is set
-- from the database clock (one clock for every writer, whatever the writers' clocks say).
CREATE FUNCTION "kuberelay_touch_updated_at"() RETURNS TRIGGER AS $$
BEGIN
    NEW."updated_at" := clock_timestamp();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER "api_keys_touch_updated_at" BEFORE INSERT OR UPDATE ON "api_keys"
    FOR EACH ROW EXECUTE FUNCTION "kuberelay_touch_updated_at"();
