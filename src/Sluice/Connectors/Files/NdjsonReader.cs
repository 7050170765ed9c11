namespace Sluice.Connectors.Files;

/// <summary>One JSON object per line. A line that does not parse is a bad record (quarantinable), not a bad file.</summary>
internal sealed class NdjsonReader : ChunkedRecordReader
{
    private long _line;

    protected override int Scan(ReadOnlySpan<byte> data, bool final, IngestRun run)
    {
        var offset = 0;
        while (offset < data.Length)
        {
            var rest = data[offset..];
            var newline = rest.IndexOf((byte)'\n');
            if (newline < 0 && !final)
            {
                break;
            }

            var line = newline < 0 ? rest : rest[..newline];
            offset += newline < 0 ? rest.Length : newline + 1;
            _line++;
            if (line.Length > 0 && line[^1] == (byte)'\r') { line = line[..^1]; }
            if (line.Trim((byte)' ').Length == 0) { continue; }

            var record = run.NextRecord();
            var problem = JsonRecordParser.Parse(line, run.Shape, run.Builder);
            run.Accept(problem, record, _line, line);
            if (run.StopReading)
            {
                break;
            }
        }

        return offset;
    }
}
