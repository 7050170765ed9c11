using System.Globalization;
using System.Text;

namespace Sluice.Recipes.Generators;

/// <summary>Options of <c>sluice generate sales-warehouse</c>.</summary>
public sealed record SalesWarehouseGeneratorOptions
{
    /// <summary>Daily file pairs (customers_YYYYMMDD.csv, sales_YYYYMMDD.csv) to write.</summary>
    public int Days { get; init; } = 3;

    /// <summary>Customers in the first day's file (the full list; later files list new and changed customers).</summary>
    public int Customers { get; init; } = 1000;

    public int SalesPerDay { get; init; } = 5000;

    /// <summary>The first file's date (default: <see cref="Days"/> days before today, UTC).</summary>
    public DateOnly? Start { get; init; }

    /// <summary>Share of customers who move to another city each day (default 1%).</summary>
    public double MoveRatio { get; init; } = 0.01;

    /// <summary>Share of rows made dirty on purpose (white space, case, thousands separators, other date formats) or invalid (default 1%).</summary>
    public double DirtyRatio { get; init; } = 0.01;

    public int? Seed { get; init; }
}

/// <summary>What the generator wrote.</summary>
public sealed record SalesWarehouseGeneration(IReadOnlyList<string> Files, long CustomerRows, long SalesRows, long Moves);

/// <summary>
/// Writes realistic daily exports of the seed's shape: the first customers file lists everyone, later ones the day's
/// new customers, moves (about <see cref="SalesWarehouseGeneratorOptions.MoveRatio"/> of the customers), renames
/// (some on the same day as a move) and a few unchanged re-sends; sales files reference known customers, with late
/// sales dated a few days back. Dirty values are mixed in: extra and odd white space, upper/lower case cities,
/// quoted names with commas, amounts as "1,234.50", dates as dd/MM/yyyy; and invalid ones: missing or non-numeric
/// ids, negative or non-numeric amounts, unknown customers, exact duplicate lines. Files are written under a
/// temporary name and renamed when complete; the same seed gives the same files.
/// </summary>
public sealed class SalesWarehouseGenerator(string incoming, SalesWarehouseGeneratorOptions options, TimeProvider time)
{
    private static readonly string[] FirstNames =
    [
        "Alice", "Bruno", "Chloé", "David", "Emma", "François", "Gabriel", "Hélène", "Inès", "Jules", "Karim", "Léa", "Marc", "Nadia", "Olivier", "Pauline",
        "Quentin", "Rose", "Samuel", "Théo", "Ugo", "Valérie", "William", "Xavier", "Yasmine", "Zoé", "Anaïs", "Benoît", "Céline", "Denis",
    ];

    private static readonly string[] LastNames =
    [
        "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia",
        "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez", "O'Neil",
    ];

    private static readonly string[] Cities =
    [
        "Paris", "Lyon", "Marseille", "Toulouse", "Nice", "Nantes", "Strasbourg", "Montpellier", "Bordeaux", "Lille", "Rennes", "Reims", "Saint-Étienne",
        "Le Havre", "Toulon", "Grenoble", "Dijon", "Angers", "Nîmes", "Aix-En-Provence", "Brest", "Limoges", "Tours", "Amiens", "Perpignan", "Metz",
        "Besançon", "Orléans", "Rouen", "Mulhouse", "Caen", "Nancy", "L'Isle-Sur-La-Sorgue", "Saint-Denis", "Avignon",
    ];

    private static readonly string[] Products =
    [
        "Espresso Machine", "Coffee Beans 1kg", "Milk Frother", "Ceramic Mug", "Travel Mug", "Grinder", "Filter Papers", "Kettle", "Tea Sampler", "Cocoa Tin",
        "Cold Brew Kit", "Pour-Over Set", "Scale", "Tamper", "Descaler", "Syrup Vanilla", "Syrup Caramel", "Cup Set", "Teapot", "Gift Card",
    ];

#pragma warning disable CA5394 // Sample data, not security: a seeded generator makes runs repeatable.
    private readonly Random _random = options.Seed is { } s ? new Random(s) : new Random();
    private readonly List<int> _city = [];
    private readonly List<int> _first = [];
    private readonly List<int> _last = [];

    public SalesWarehouseGeneration Write()
    {
        Directory.CreateDirectory(incoming);
        var start = options.Start ?? DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime).AddDays(-options.Days);
        var files = new List<string>();
        long customerRows = 0, salesRows = 0, moves = 0;
        for (var day = 0; day < options.Days; day++)
        {
            var date = start.AddDays(day);
            var (path, rows, moved) = WriteCustomers(date, day == 0);
            files.Add(path);
            customerRows += rows;
            moves += moved;
            var (sales, salesCount) = WriteSales(date);
            files.Add(sales);
            salesRows += salesCount;
        }

        return new SalesWarehouseGeneration(files, customerRows, salesRows, moves);
    }

    private (string Path, long Rows, long Moves) WriteCustomers(DateOnly date, bool first)
    {
        var lines = new List<int>();
        long moves = 0;
        if (first)
        {
            for (var i = 0; i < options.Customers; i++) { NewCustomer(); lines.Add(i); }
        }
        else
        {
            var known = _city.Count;
            var changed = new HashSet<int>();
            var moveCount = (int)Math.Round(known * options.MoveRatio);
            for (var i = 0; i < moveCount; i++)
            {
                var c = _random.Next(known);
                if (!changed.Add(c)) { continue; }
                _city[c] = OtherCity(_city[c]);
                moves++;
                if (_random.NextDouble() < 0.05) { _last[c] = _random.Next(LastNames.Length); }
            }

            for (var i = 0; i < Math.Max(1, known / 1000); i++)
            {
                var c = _random.Next(known);
                if (changed.Add(c)) { _last[c] = _random.Next(LastNames.Length); }
            }

            for (var i = 0; i < Math.Max(1, known / 500); i++)
            {
                changed.Add(_random.Next(known)); // re-sent unchanged: must change nothing
            }

            for (var i = 0; i < Math.Max(1, options.Customers / 500); i++)
            {
                NewCustomer();
                changed.Add(_city.Count - 1);
            }

            lines.AddRange(changed.Order());
        }

        long rows = 0;
        var path = WriteFile($"customers_{date:yyyyMMdd}.csv", "ID,Name,City", w =>
        {
            foreach (var c in lines)
            {
                var line = CustomerLine(c);
                w.Write(line);
                w.Write('\n');
                rows++;
                var dirt = _random.NextDouble();
                if (dirt < options.DirtyRatio * 0.1) { w.Write(line); w.Write('\n'); rows++; }
                else if (dirt < options.DirtyRatio * 0.15) { w.Write($",{Name(c)},{Cities[_city[c]]}\n"); rows++; }
                else if (dirt < options.DirtyRatio * 0.2) { w.Write($"x{c + 1},{Name(c)},{Cities[_city[c]]}\n"); rows++; }
            }
        });
        return (path, rows, moves);
    }

    private string CustomerLine(int c)
    {
        var name = Name(c);
        var city = Cities[_city[c]];
        var dirt = _random.NextDouble();
        if (dirt < options.DirtyRatio) { city = city.ToLowerInvariant(); }
        else if (dirt < options.DirtyRatio * 2) { city = "  " + city.ToUpperInvariant() + " "; }
        else if (dirt < options.DirtyRatio * 2.5) { name = name.Replace(" ", "   ", StringComparison.Ordinal) + "\t"; }
        else if (dirt < options.DirtyRatio * 2.6) { name = name.Insert(1, "\u0007"); }

        if (_random.NextDouble() < options.DirtyRatio * 0.5)
        {
            name = $"\"{LastNames[_last[c]]}, {FirstNames[_first[c]]}\"";
            return $"{c + 1},{name},{Quote(city)}";
        }

        return $"{c + 1},{Quote(name)},{Quote(city)}";
    }

    private (string Path, long Rows) WriteSales(DateOnly date)
    {
        long rows = 0;
        var known = _city.Count;
        var path = WriteFile($"sales_{date:yyyyMMdd}.csv", "CustomerID,Product,SalesAmount,ShopId,TransactionDate", w =>
        {
            string? previous = null;
            for (var i = 0; i < options.SalesPerDay; i++)
            {
                var dirt = _random.NextDouble();
                if (previous is not null && dirt < options.DirtyRatio * 0.1)
                {
                    w.Write(previous); // an exact duplicate line
                    w.Write('\n');
                    rows++;
                    continue;
                }

                var customer = (dirt < options.DirtyRatio * 0.2 ? known + 1000 + _random.Next(1000) : _random.Next(known) + 1).ToString(CultureInfo.InvariantCulture);
                if (dirt >= options.DirtyRatio * 0.2 && dirt < options.DirtyRatio * 0.3) { customer = ""; }
                var cents = _random.Next(100, 250_000);
                var amount = (cents / 100m).ToString("0.00", CultureInfo.InvariantCulture);
                var roll = _random.NextDouble();
                if (roll < options.DirtyRatio * 5)
                {
                    if (cents >= 100_000) { amount = "\"" + (cents / 100m).ToString("#,##0.00", CultureInfo.InvariantCulture) + "\""; }
                }
                else if (roll < options.DirtyRatio * 5.3) { amount = "-" + amount; }
                else if (roll < options.DirtyRatio * 5.5) { amount = "n/a"; }
                else if (roll < options.DirtyRatio * 8) { amount = amount.TrimEnd('0').TrimEnd('.'); }
                var when = _random.NextDouble() < 0.05 ? date.AddDays(-_random.Next(1, 4)) : date;
                var dateText = _random.NextDouble() < options.DirtyRatio * 5 ? when.ToString("dd/MM/yyyy", CultureInfo.InvariantCulture) : when.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
                var product = Products[_random.Next(Products.Length)];
                if (_random.NextDouble() < options.DirtyRatio) { product = " " + product.Replace(" ", "  ", StringComparison.Ordinal); }
                var line = $"{customer},{Quote(product)},{amount},{_random.Next(1, 51)},{dateText}";
                w.Write(line);
                w.Write('\n');
                previous = line;
                rows++;
            }
        });
        return (path, rows);
    }

    private void NewCustomer()
    {
        _first.Add(_random.Next(FirstNames.Length));
        _last.Add(_random.Next(LastNames.Length));
        _city.Add(_random.Next(Cities.Length));
    }

    private string Name(int c) => $"{FirstNames[_first[c]]} {LastNames[_last[c]]}";

    private int OtherCity(int current)
    {
        var next = _random.Next(Cities.Length - 1);
        return next >= current ? next + 1 : next;
    }

    private static string Quote(string value) =>
        value.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;

    private string WriteFile(string name, string header, Action<TextWriter> body)
    {
        var final = Path.Combine(incoming, name);
        var temp = final + ".tmp";
        using (var writer = new StreamWriter(temp, false, new UTF8Encoding(false), 1 << 20))
        {
            writer.Write(header);
            writer.Write('\n');
            body(writer);
        }

        File.Move(temp, final, overwrite: true);
        return final;
    }
}
