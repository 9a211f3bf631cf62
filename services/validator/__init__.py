"""The validator: the bus's gate from the incoming stream to the valid or dead-letter stream."""
