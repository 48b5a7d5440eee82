"""Every query, by area. Each is backed by an index; none holds a business rule (those live in
bot/domain, which asks through these named functions)."""
