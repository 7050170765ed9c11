namespace Sluice.IntegrationTests.SinkConformance;

// Every sink, the same tests (SinkConformance<T>): one class per sink so each shows under its own name.
public sealed class LakeSinkConformance : SinkConformance<LakeSinkFixture>;

public sealed class PostgresSinkConformance : SinkConformance<PostgresSinkFixture>;

public sealed class ClickHouseSinkConformance : SinkConformance<ClickHouseSinkFixture>;

public sealed class RedisHashSinkConformance : SinkConformance<RedisHashSinkFixture>;

public sealed class RedisRealtimeSinkConformance : SinkConformance<RedisRealtimeSinkFixture>;

public sealed class HttpSinkConformance : SinkConformance<HttpSinkFixture>;

public sealed class ReminderStoreSinkConformance : SinkConformance<ReminderStoreSinkFixture>;
