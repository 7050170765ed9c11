namespace Sluice.Connectors.Redis;

/// <summary>
/// The Lua script that applies one batch atomically. Each event sets its bit in a seen-bitmap shard first; only an
/// event whose bit was clear counts (count key, minute bucket), so a replayed event never counts twice. The latest
/// event per entity replaces <c>{entity}:last:{id}</c> only when it is newer (event time, then event id). Then the
/// window ZSET is rebuilt from the minute buckets.
/// ARGV: events, lasts, window key index, window ttl, bucket ttl, last ttl, window buckets, time field, id field, then
/// per event (seen key, bit, count key, bucket key, member), per last (key, time, id, json), window bucket keys.
/// Key arguments are indexes into KEYS (0 = none), so every key the script touches is declared.
/// </summary>
internal static class RedisRealtimeScript
{
    public const string Source = """
        local n = tonumber(ARGV[1])
        local nl = tonumber(ARGV[2])
        local wk = tonumber(ARGV[3])
        local wttl = tonumber(ARGV[4])
        local bttl = tonumber(ARGV[5])
        local lttl = tonumber(ARGV[6])
        local nb = tonumber(ARGV[7])
        local tfield = ARGV[8]
        local ifield = ARGV[9]
        local p = 10
        local counted = 0
        local touched = {}
        for i = 1, n do
          local seen = KEYS[tonumber(ARGV[p])]
          local bit = tonumber(ARGV[p + 1])
          local ck = tonumber(ARGV[p + 2])
          local bk = tonumber(ARGV[p + 3])
          local member = ARGV[p + 4]
          p = p + 5
          if redis.call('SETBIT', seen, bit, 1) == 0 then
            counted = counted + 1
            if ck > 0 then redis.call('INCR', KEYS[ck]) end
            if bk > 0 then
              redis.call('ZINCRBY', KEYS[bk], 1, member)
              touched[bk] = true
            end
          end
        end
        for k, _ in pairs(touched) do redis.call('EXPIRE', KEYS[k], bttl) end
        for i = 1, nl do
          local key = KEYS[tonumber(ARGV[p])]
          local ts = ARGV[p + 1]
          local id = tonumber(ARGV[p + 2])
          local json = ARGV[p + 3]
          p = p + 4
          local replace = true
          local current = redis.call('GET', key)
          if current then
            local ok, doc = pcall(cjson.decode, current)
            if ok and type(doc) == 'table' then
              local cts = doc[tfield]
              local cid = tonumber(doc[ifield]) or 0
              if type(cts) == 'string' and (cts > ts or (cts == ts and cid >= id)) then replace = false end
            end
          end
          if replace then redis.call('SET', key, json, 'EX', lttl) end
        end
        if wk > 0 then
          local keys = {}
          for i = 1, nb do keys[i] = KEYS[tonumber(ARGV[p + i - 1])] end
          redis.call('ZUNIONSTORE', KEYS[wk], nb, unpack(keys))
          redis.call('EXPIRE', KEYS[wk], wttl)
        end
        return counted
        """;
}
