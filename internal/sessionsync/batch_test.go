package sessionsync

// EncodeBatch encodes a whole batch (the tests' way to build wire input;
// the sender streams records with AppendBatchHeader and AppendRecord).
func EncodeBatch(b []byte, bt *Batch) []byte {
	b = AppendBatchHeader(b, bt.Seq, bt.Flags, len(bt.Records))
	for i := range bt.Records {
		b = AppendRecord(b, &bt.Records[i])
	}
	return b
}
