"""The event plane: CloudEvents models, the RabbitMQ binding, the bus, dead letters, the inbox."""
