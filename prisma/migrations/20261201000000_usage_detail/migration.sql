-- Reasoning and cache-write tokens, and whether a request's usage was reported or estimated.
-- AlterTable
ALTER TABLE "request_logs" ADD COLUMN     "cache_write_tokens" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "reasoning_tokens" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "usage_source" TEXT;

-- AlterTable
ALTER TABLE "usage_daily" ADD COLUMN     "cache_write_tokens" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "reasoning_tokens" BIGINT NOT NULL DEFAULT 0;
