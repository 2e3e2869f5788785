

BoutputJâ²3µõµz¸•6-+m¶û8ž