-- The async job plane (jobs/): media_tasks becomes the durable job table: queue order, slots,
-- poll leases, deadlines and the bill of each job.
-- AlterTable
ALTER TABLE "media_tasks" ALTER COLUMN "upstream_task_id" DROP NOT NULL,
ADD COLUMN     "seq" BIGSERIAL NOT NULL,
ADD COLUMN     "request" JSONB,
ADD COLUMN     "input_reference" BYTEA,
ADD COLUMN     "dispatched_at" TIMESTAMPTZ(3),
ADD COLUMN     "lease_owner" TEXT,
ADD COLUMN     "lease_until" TIMESTAMPTZ(3),
ADD COLUMN     "deadline_at" TIMESTAMPTZ(3),
ADD COLUMN     "cost" DECIMAL(20,10) NOT NULL DEFAULT 0,
ADD COLUMN     "version" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "deleted_at" TIMESTAMPTZ(3);

-- CreateIndex
CREATE INDEX "media_tasks_channel_status_seq_idx" ON "media_tasks"("channel", "status", "seq");

-- CreateIndex
CREATE INDEX "media_tasks_key_id_seq_idx" ON "media_tasks"("key_id", "seq");
