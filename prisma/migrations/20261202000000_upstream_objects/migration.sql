-- Upstream objects (files, batches, responses) pinned to the channel that created them.
-- CreateTable
CREATE TABLE "upstream_objects" (
    "kind" TEXT NOT NULL,
    "id" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "key_id" TEXT,
    "model" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "billed_at" TIMESTAMPTZ(3),

    CONSTRAINT "upstream_objects_pkey" PRIMARY KEY ("kind","id")
);

-- CreateIndex
CREATE INDEX "upstream_objects_kind_key_id_created_at_idx" ON "upstream_objects"("kind", "key_id", "created_at");
