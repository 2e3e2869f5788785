
BoutputJ(VWJ?фA?ЛzuїvцЖѕSoЖ>¶роѕ­ЌЃї†Яѕёнd?I?