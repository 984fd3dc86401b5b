# SOP 4: WAL recovery. A real crash-recovery drill on the embedded defaults: wal-writer appends with
# fsync durability and is SIGKILLed at $(WAL_REPEAT) random moments, wal-replay recovers each time,
# then wal-verify checks the evidence. Scratch WAL in $(RUNTIME)/wal/ (recreated per run), evidence
# in $(WAL_RESULT). Running it again replaces both.
WAL_DURABILITY ?= fsync
WAL_REPEAT ?= 5
WAL_RATE ?= 1000
WAL_RESULT ?= $(RESULTS)/wal_recovery_result.env
WAL_MAX_RTO_SECONDS ?= 10
WAL_MAX_RPO_EVENTS ?= 0

.PHONY: wal-drill
wal-drill: build
	@mkdir -p $(RUNTIME)/wal $(RESULTS)
	$(BIN)/wal-drill --execute --wal-path $(RUNTIME)/wal/runtime_events.wal \
	    --output-file $(WAL_RESULT) --durability $(WAL_DURABILITY) --rate $(WAL_RATE) \
	    --repeat $(WAL_REPEAT) --operator "$(OPERATOR)" \
	    --max-rto-seconds $(WAL_MAX_RTO_SECONDS) --max-rpo-events $(WAL_MAX_RPO_EVENTS)
	$(BIN)/wal-verify --evidence-file $(WAL_RESULT) \
	    --max-rto-seconds $(WAL_MAX_RTO_SECONDS) --max-rpo-events $(WAL_MAX_RPO_EVENTS)

DRILLS += wal-drill
