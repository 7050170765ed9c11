namespace Sluice.Connectors.Redis;

/// <summary>
/// The Lua script of the generic <c>redis</c> sink: one batch, atomically. Each row key has a position key beside it
/// (<c>&lt;key&gt;:_pos</c>) holding the highest source position applied to it; an entry at or below it is not applied
/// again, so a replayed row, however the batch around it is cut, never counts twice nor puts back an older value (as
/// <c>redis_realtime</c>'s seen-bitmap counts each event once). Positions are fixed-width text, compared as text.
/// KEYS: per row key, the key and its position key. ARGV: mode, ttl seconds (0: none), keys; then per key the number
/// of entries and per entry its position ('' when the table has none: always applied) and, by mode, the increment
/// (counter), the value (set) or the field count and field/value pairs (hash). Returns the number of keys changed.
/// </summary>
internal static class RedisSinkScript
{
    public const string Source = """
        local mode = ARGV[1]
        local ttl = tonumber(ARGV[2])
        local n = tonumber(ARGV[3])
        local p = 4
        local changed = 0
        for i = 1, n do
          local key = KEYS[2 * i - 1]
          local posKey = KEYS[2 * i]
          local entries = tonumber(ARGV[p])
          p = p + 1
          local stored = redis.call('GET', posKey)
          local top = stored
          local applied = false
          local sum = 0
          for e = 1, entries do
            local pos = ARGV[p]
            local fresh = pos == '' or not stored or pos > stored
            if fresh and pos ~= '' and (not top or pos > top) then top = pos end
            if mode == 'counter' then
              if fresh then sum = sum + tonumber(ARGV[p + 1]); applied = true end
              p = p + 2
            elseif mode == 'set' then
              if fresh then redis.call('SET', key, ARGV[p + 1]); applied = true end
              p = p + 2
            else
              local nf = tonumber(ARGV[p + 1])
              if fresh then
                redis.call('DEL', key)
                if nf > 0 then redis.call('HSET', key, unpack(ARGV, p + 2, p + 1 + 2 * nf)) end
                applied = true
              end
              p = p + 2 + 2 * nf
            end
          end
          if applied then
            changed = changed + 1
            if mode == 'counter' then redis.call('INCRBY', key, sum) end
            if top and top ~= stored then redis.call('SET', posKey, top) end
            if ttl > 0 then
              redis.call('EXPIRE', key, ttl)
              if top then redis.call('EXPIRE', posKey, ttl) end
            end
          end
        end
        return changed
        """;
}
